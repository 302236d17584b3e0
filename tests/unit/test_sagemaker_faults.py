"""Fault injection through botocore's event hooks: every SageMaker failure mode, and the
dispatcher's fallback (or 503 + Retry-After) for each.

The client is a real boto3 sagemaker-runtime client; a `before-send` handler answers in place
of the network with the HTTP response SageMaker would send (or raises the timeout), so the
backend's parsing and error mapping run exactly as in production.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from cirrus_api.backends.base import BackendUnavailableError
from cirrus_api.backends.circuit import CircuitBreaker, GuardedBackend
from cirrus_api.backends.sagemaker import SageMakerBackend
from cirrus_api.dispatch import Dispatcher
from cirrus_common.errors import InvalidRequestError
from cirrus_common.payload import ChatMessage, GenerationParams, ModelRequest, StreamDelta
from cirrus_common.registry import ModelSpec
from cirrus_common.routing import Deployment
from tests.fakes import ScriptedBackend

BUDGET = 10.0
SPEC = ModelSpec(
    id="m",
    kind="generation",
    source="builtin:demo",
    backends=("lambda", "sagemaker"),
    prefill_tps=1.0,  # one second per prompt token: prompt size picks the route
    decode_tps=1000.0,
)


class _Raw(io.BytesIO):
    """What botocore reads a response from: stream() for errors, read() for a Body blob."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def reply(status: int, body: dict[str, Any], error_type: str | None = None) -> AWSResponse:
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    raw = _Raw(json.dumps(body).encode())
    return AWSResponse("https://runtime.sagemaker", status, HTTPHeaders.from_dict(headers), raw)


def model_error(original: int) -> AWSResponse:
    message = json.dumps({"error": "Input validation error", "error_type": "validation"})
    body = {"message": "Received error", "OriginalStatusCode": original, "OriginalMessage": message}
    return reply(424, body, "ModelError")


FAULTS: dict[str, Callable[[], AWSResponse]] = {
    "throttled": lambda: reply(400, {"message": "Rate exceeded"}, "ThrottlingException"),
    "not_ready": lambda: reply(429, {"message": "warming"}, "ModelNotReadyException"),
    "model_error_500": lambda: model_error(500),
    "model_error_429": lambda: model_error(429),
    "model_error_422": lambda: model_error(422),  # the container refused the request
    "service_unavailable": lambda: reply(503, {"message": "unavailable"}, "ServiceUnavailable"),
    "internal_failure": lambda: reply(500, {"message": "oops"}, "InternalFailure"),
}
EXPECTED_REASON = {
    "throttled": "throttled",
    "not_ready": "not_ready",
    "model_error_500": "failing",
    "model_error_429": "throttled",
    "service_unavailable": "failing",
    "internal_failure": "failing",
    "timeout": "timeout",
}

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "tgi",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "From the GPU"},
            "finish_reason": "eos_token",
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
}


def sagemaker(fault: str | None) -> tuple[SageMakerBackend, list[dict[str, Any]]]:
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never reached: the hook answers
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    sent: list[dict[str, Any]] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        if fault == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault is None:
            return reply(200, COMPLETION)
        return FAULTS[fault]()

    handler: Any = before_send  # the stubs type handlers as returning None; before-send may answer
    client.meta.events.register("before-send.sagemaker-runtime.*", handler)
    return SageMakerBackend("gpu", client=client), sent


def chat(prompt_tokens: int) -> ModelRequest:
    return ModelRequest(
        op="chat",
        model="m",
        messages=(ChatMessage(role="user", content="x" * prompt_tokens),),
        params=GenerationParams(max_tokens=1),
    )


class FixedCounter:
    """Counts one token per character, so tests pick exact estimates."""

    def count(self, spec: ModelSpec, request: ModelRequest) -> int:
        return sum(len(m.content) for m in request.messages)

    def measure(self, spec: ModelSpec, request: ModelRequest) -> tuple[int, int | None]:
        return self.count(spec, request), None  # an estimate: no floor known


def dispatcher(gpu: Any, cpu: ScriptedBackend) -> Dispatcher:
    return Dispatcher(
        {"lambda": cpu, "sagemaker": gpu},
        deployment=Deployment(has_sagemaker=True, budget_s=BUDGET),
        tokens=FixedCounter(),  # type: ignore[arg-type]
    )


# Estimates: 9 s (heavy: over 80% of the budget, within it), 15 s (beyond it), 2 s (light).
IN_MARGIN, BEYOND, LIGHT = 9, 15, 2


def test_success_maps_the_completion_and_sends_the_messages_schema() -> None:
    backend, sent = sagemaker(None)
    response = backend.run(chat(3))
    assert response.result is not None and response.result.kind == "generation"
    assert response.result.choices[0].text == "From the GPU"
    assert response.result.choices[0].finish_reason == "stop"
    assert (response.result.prompt_tokens, response.result.completion_tokens) == (11, 3)
    assert sent[0]["messages"] == [{"role": "user", "content": "xxx"}]
    assert sent[0]["max_tokens"] == 1 and sent[0]["stream"] is False
    assert "top_p" not in sent[0]  # TGI refuses top_p == 1.0


@pytest.mark.parametrize("fault", sorted(EXPECTED_REASON))
def test_each_fault_is_unavailable_with_its_reason(fault: str) -> None:
    backend, _ = sagemaker(fault)
    with pytest.raises(BackendUnavailableError) as info:
        backend.run(chat(3))
    assert info.value.reason == EXPECTED_REASON[fault]
    assert info.value.retry_after is not None and info.value.retry_after >= 1


def test_container_4xx_is_the_clients_error_and_never_falls_back() -> None:
    backend, _ = sagemaker("model_error_422")
    cpu = ScriptedBackend()
    with pytest.raises(InvalidRequestError, match="Input validation error"):
        dispatcher(backend, cpu).run(SPEC, chat(IN_MARGIN))
    assert cpu.calls == []


@pytest.mark.parametrize("fault", sorted(EXPECTED_REASON))
def test_heavy_request_falls_back_to_model_function_when_it_fits(fault: str) -> None:
    backend, sent = sagemaker(fault)
    cpu = ScriptedBackend(text="From Lambda")
    response, route = dispatcher(backend, cpu).run(SPEC, chat(IN_MARGIN))
    assert len(sent) == 1  # SageMaker was tried first
    assert route.backend == "lambda"
    assert route.reason == f"fallback_from_sagemaker_{EXPECTED_REASON[fault]}"
    assert response.result is not None and response.result.choices[0].text == "From Lambda"  # type: ignore[union-attr]


@pytest.mark.parametrize("fault", ["throttled", "not_ready", "timeout"])
def test_request_beyond_lambdas_limits_gets_503_with_retry_after(fault: str) -> None:
    backend, _ = sagemaker(fault)
    cpu = ScriptedBackend()
    with pytest.raises(BackendUnavailableError) as info:
        dispatcher(backend, cpu).run(SPEC, chat(BEYOND))
    assert info.value.status == 503 and info.value.headers()["Retry-After"]
    assert cpu.calls == []


def test_stream_falls_back_before_the_first_byte() -> None:
    backend, _ = sagemaker("not_ready")
    cpu = ScriptedBackend(text="streamed by Lambda")
    items, route = dispatcher(backend, cpu).stream(
        SPEC, chat(IN_MARGIN).model_copy(update={"stream": True})
    )
    assert route.reason == "fallback_from_sagemaker_not_ready"
    texts = [i.text for i in items if isinstance(i, StreamDelta)]
    assert "".join(texts).strip() == "streamed by Lambda"


def test_model_function_throttled_goes_to_sagemaker() -> None:
    backend, sent = sagemaker(None)
    cpu = ScriptedBackend(fail=lambda _: BackendUnavailableError("lambda", "throttled"))
    response, route = dispatcher(backend, cpu).run(SPEC, chat(LIGHT))
    assert (route.backend, route.reason) == ("sagemaker", "fallback_from_lambda_throttled")
    assert response.result is not None and len(sent) == 1


def test_open_circuit_skips_sagemaker_without_calling_it() -> None:
    backend, sent = sagemaker("internal_failure")
    breaker = CircuitBreaker("sagemaker", failure_threshold=2, cooldown_s=60)
    d = dispatcher(GuardedBackend(backend, breaker), ScriptedBackend())
    for _ in range(2):
        d.run(SPEC, chat(IN_MARGIN))
    assert breaker.state == "open" and len(sent) == 2
    _, route = d.run(SPEC, chat(IN_MARGIN))
    assert route.reason == "fallback_from_sagemaker_circuit_open"
    assert len(sent) == 2  # not called while open


def test_client_config_has_explicit_timeouts_and_standard_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config: Any = SageMakerBackend("gpu").client.meta.config
    assert config.read_timeout > 60 and config.connect_timeout <= 5
    assert config.retries["mode"] == "standard"
