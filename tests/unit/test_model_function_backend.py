"""ModelFunction over boto3: one attempt per request, and its own failures fall back."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError
from cirrus_api.backends.model_function import ModelFunctionBackend
from cirrus_api.dispatch import Dispatcher
from cirrus_common.payload import ModelRequest, ModelResponse
from cirrus_common.registry import ModelSpec
from cirrus_common.routing import Deployment
from tests.fakes import ScriptedBackend

REQUEST = ModelRequest(op="completion", model="m", prompts=("hi",))


@pytest.fixture
def silent_endpoint(fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A Lambda endpoint that accepts requests and never answers; counts the attempts."""
    attempts: list[int] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            attempts.append(1)

    threading.Thread(target=accept, daemon=True).start()
    host, port = server.getsockname()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://{host}:{port}")
    yield attempts
    server.close()
    for conn in held:
        conn.close()


def test_a_read_timeout_is_not_retried(silent_endpoint: list[int]) -> None:
    """An invoke is not idempotent: a retry would run the whole generation again."""
    backend = ModelFunctionBackend("fn", read_timeout_s=0.5)
    with pytest.raises(BackendUnavailableError) as info:
        backend.run(REQUEST)
    assert info.value.reason == "timeout"
    assert len(silent_endpoint) == 1


class Answering:
    """A Lambda client stub that answers every invoke with one ModelResponse."""

    def __init__(self, response: ModelResponse) -> None:
        self.body = response.model_dump_json().encode()

    def invoke(self, **_: Any) -> dict[str, Any]:
        return {"StatusCode": 200, "Payload": io.BytesIO(self.body)}


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("model_load_failed", BackendUnavailableError),
        ("out_of_memory", BackendUnavailableError),
        ("internal_error", BackendFailedError),
    ],
)
def test_the_functions_own_failures_are_backend_errors(code: Any, raised: type) -> None:
    backend = ModelFunctionBackend("fn", client=Answering(ModelResponse.failure(code, "x")))
    with pytest.raises(raised):
        backend.run(REQUEST)


def test_a_request_error_goes_to_the_client() -> None:
    too_long = ModelResponse.failure("context_length_exceeded", "too long", "prompt")
    backend = ModelFunctionBackend("fn", client=Answering(too_long))
    assert backend.run(REQUEST) == too_long


def test_a_model_that_cannot_load_falls_back_to_sagemaker() -> None:
    spec = ModelSpec(id="m", kind="generation", source="x", backends=("lambda", "sagemaker"))
    broken = ModelFunctionBackend(
        "fn", client=Answering(ModelResponse.failure("model_load_failed", "corrupt weights"))
    )
    gpu = ScriptedBackend(name="sagemaker", text="from the GPU")
    dispatcher = Dispatcher(
        {"lambda": broken, "sagemaker": gpu}, deployment=Deployment(has_sagemaker=True)
    )
    chat = ModelRequest(op="chat", model="m", messages=({"role": "user", "content": "hi"},))  # type: ignore[arg-type]
    response, route = dispatcher.run(spec, chat)
    assert route.backend == "sagemaker" and route.reason == "fallback_from_lambda_failing"
    assert response.result is not None and len(gpu.calls) == 1
