"""Routing through the API app: headers on every outcome, 503s, mid-stream failures."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from cirrus_api.app import create_app
from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError, StreamItem
from cirrus_api.dispatch import Dispatcher
from cirrus_common.payload import ModelRequest, StreamDelta
from cirrus_common.routing import Deployment
from cirrus_common.settings import Settings
from tests.fakes import ScriptedBackend

BODY = {"model": "cirrus-demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


class BreaksMidStream(ScriptedBackend):
    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        yield StreamDelta(index=0, text="Half an ans")
        raise BackendFailedError(self.name, "connection reset")


def client(lam: ScriptedBackend, gpu: ScriptedBackend) -> TestClient:
    dispatcher = Dispatcher(
        {"lambda": lam, "sagemaker": gpu}, deployment=Deployment(has_sagemaker=True)
    )
    app = create_app(Settings(auth_enabled=False), dispatcher)
    return TestClient(app, raise_server_exceptions=False)


def test_every_generation_response_says_where_it_ran() -> None:
    c = client(ScriptedBackend(), ScriptedBackend(name="sagemaker"))
    ok = c.post("/v1/chat/completions", json=BODY)
    assert (ok.headers["x-cirrus-route"], ok.headers["x-cirrus-route-reason"]) == (
        "lambda",
        "light",
    )
    forced = c.post("/v1/chat/completions", json=BODY, headers={"X-Cirrus-Route": "sagemaker"})
    assert forced.headers["x-cirrus-route"] == "sagemaker"


def test_when_no_backend_can_take_it_the_503_carries_retry_after_and_the_route() -> None:
    down = ScriptedBackend(fail=lambda _: BackendUnavailableError("lambda", "throttled", 3))
    gpu_down = ScriptedBackend(
        name="sagemaker", fail=lambda _: BackendUnavailableError("sagemaker", "not_ready", 10)
    )
    response = client(down, gpu_down).post("/v1/chat/completions", json=BODY)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "10"
    assert response.headers["x-cirrus-route"] == "sagemaker"
    assert response.headers["x-cirrus-route-reason"] == "unavailable_not_ready"
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_mid_stream_failure_ends_the_stream_with_an_error_event() -> None:
    c = client(BreaksMidStream(), ScriptedBackend(name="sagemaker"))
    response = c.post("/v1/chat/completions", json={**BODY, "stream": True})
    assert response.status_code == 200
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert "Half an ans" in response.text
    assert '"error"' in lines[-2] and "backend_error" in lines[-2]
    assert lines[-1] == "data: [DONE]"


def test_async_without_an_async_endpoint_is_ignored_as_rfc7240_allows() -> None:
    c = client(ScriptedBackend(), ScriptedBackend(name="sagemaker"))
    response = c.post("/v1/chat/completions", json=BODY, headers={"Prefer": "respond-async"})
    assert response.status_code == 200
    assert "preference-applied" not in response.headers
