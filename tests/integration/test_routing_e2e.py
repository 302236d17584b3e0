"""Routing end to end on the local stack: a long prompt lands on the local SageMaker
endpoint, a short one on ModelFunction, both answered by the real demo model.

The stack is the shared one (moto, the Lambda and SageMaker stand-ins); this module serves a
second API app over it whose registry gives the demo model a slow prefill rate, so that a
prompt of ~100 tokens estimates at 90% of the API Gateway budget (heavy: the GPU first, yet
within Lambda's limits, so it may fall back there) and one of ~200 tokens beyond it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import uvicorn
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from cirrus_api.app import build_dispatcher, build_verifier, create_app
from cirrus_api.backends.circuit import GuardedBackend
from cirrus_api.tokens import TokenCounter
from cirrus_common.payload import ChatMessage, ModelRequest
from cirrus_common.registry import ModelRegistry
from cirrus_common.routing import HEAVY_FRACTION
from cirrus_common.settings import get_settings
from tests.integration.conftest import RunningStack, free_port

SHORT = "What is a module?"
SENTENCE = "Explain how Python modules, packages and the import system work together. "
MAX_TOKENS = 8


@dataclass
class Routed:
    url: str
    headers: dict[str, str]
    app: Any
    long: str
    too_long: str

    def chat(
        self, content: str, *, stream: bool = False, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {
            "model": "cirrus-demo",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,  # greedy: the toy model answers the same every run
            "stream": stream,
        }
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json=body,
            headers={**self.headers, **(headers or {})},
            timeout=120,
        )


def _tokens(counter: TokenCounter, spec: Any, text: str) -> int:
    request = ModelRequest(
        op="chat", model=spec.id, messages=(ChatMessage(role="user", content=text),)
    )
    return counter.count(spec, request)


@pytest.fixture(scope="module")
def routed(running_stack: RunningStack, api_key: str) -> Iterator[Routed]:
    settings = get_settings()
    assert settings.sagemaker_endpoint_name, "the local stack starts the SageMaker stand-in"
    demo = settings.models.get("cirrus-demo")
    assert demo is not None
    counter = TokenCounter(settings.model_cache_dir)
    long, too_long = SENTENCE * 7, SENTENCE * 14
    long_tokens = _tokens(counter, demo, long)
    assert counter.tokenizer(demo) is not None, "the demo model's tokenizer.json is used"
    budget = settings.api_gateway_budget_s - 1.0  # as build_dispatcher sets it
    target = (HEAVY_FRACTION + 1.0) / 2 * budget  # between "heavy" and "does not fit"
    prefill = long_tokens / (target - MAX_TOKENS / demo.decode_tps)
    models = ModelRegistry({**settings.models.models, demo.id: replace(demo, prefill_tps=prefill)})
    routed_settings = replace(settings, models=models)
    app = create_app(
        routed_settings, build_dispatcher(routed_settings), build_verifier(routed_settings)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Routed(url, {"Authorization": f"Bearer {api_key}"}, app, long, too_long)
    server.should_exit = True
    thread.join(timeout=10)


def _route(response: httpx.Response) -> tuple[str, str]:
    return response.headers["x-cirrus-route"], response.headers["x-cirrus-route-reason"]


def test_short_prompt_runs_on_model_function(routed: Routed) -> None:
    response = routed.chat(SHORT)
    assert response.status_code == 200, response.text
    assert _route(response) == ("lambda", "light")
    assert response.json()["choices"][0]["message"]["content"]


def test_long_prompt_runs_on_the_sagemaker_endpoint(routed: Routed) -> None:
    response = routed.chat(routed.long)
    assert response.status_code == 200, response.text
    assert _route(response) == ("sagemaker", "heavy_time")
    body = response.json()
    assert body["model"] == "cirrus-demo" and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]  # the demo model, via the Messages API
    assert body["usage"]["prompt_tokens"] > 50


def test_long_prompt_streams_from_the_sagemaker_endpoint(routed: Routed) -> None:
    response = routed.chat(routed.long, stream=True)
    assert response.status_code == 200, response.text
    assert _route(response) == ("sagemaker", "heavy_time")
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_header_forces_a_route_the_model_allows(routed: Routed) -> None:
    response = routed.chat(SHORT, headers={"X-Cirrus-Route": "sagemaker"})
    assert response.status_code == 200, response.text
    assert _route(response) == ("sagemaker", "forced")
    refused = routed.chat(SHORT, stream=True, headers={"X-Cirrus-Route": "async"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "route_not_allowed"


@pytest.fixture
def throttled_sagemaker(routed: Routed) -> Iterator[list[str]]:
    """Make the local endpoint answer ThrottlingException (a botocore before-send hook)."""
    guarded = routed.app.state.service.dispatcher._backends["sagemaker"]
    assert isinstance(guarded, GuardedBackend)
    events = guarded.backend.client.meta.events  # type: ignore[attr-defined]
    calls: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse:
        calls.append(request.url)
        raw = httpx.ByteStream(b'{"message": "Rate exceeded"}')
        headers = HTTPHeaders.from_dict({"x-amzn-ErrorType": "ThrottlingException"})
        return AWSResponse(request.url, 400, headers, _Raw(raw))

    events.register("before-send.sagemaker-runtime.*", throttle, unique_id="throttle")
    try:
        yield calls
    finally:
        events.unregister("before-send.sagemaker-runtime.*", unique_id="throttle")
        guarded.breaker.success()


class _Raw:
    def __init__(self, stream: httpx.ByteStream) -> None:
        self._stream = stream

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield from self._stream


def test_throttled_sagemaker_falls_back_to_model_function(
    routed: Routed, throttled_sagemaker: list[str]
) -> None:
    response = routed.chat(routed.long)
    assert response.status_code == 200, response.text
    assert _route(response) == ("lambda", "fallback_from_sagemaker_throttled")
    assert response.json()["choices"][0]["message"]["content"]
    assert throttled_sagemaker, "SageMaker was tried first"


def test_beyond_lambdas_limits_a_throttled_sagemaker_means_503(
    routed: Routed, throttled_sagemaker: list[str]
) -> None:
    response = routed.chat(routed.too_long)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert _route(response) == ("sagemaker", "unavailable_throttled")
