"""The SageMaker backend's boto3 code against the local SageMaker-runtime stand-in.

A scripted engine stands behind the endpoint (the real model has its own tests), so these run
in seconds: they check the wire, the Messages API mapping, event-stream reassembly across
PayloadParts cut mid-line, error mapping, and async inference through moto's S3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError, StreamItem
from cirrus_api.backends.sagemaker import SageMakerBackend, messages_request
from cirrus_common.errors import InvalidRequestError
from cirrus_common.payload import (
    ChatMessage,
    GenerationParams,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)
from cirrus_local.sagemaker_endpoint import LocalEndpoint, SageMakerServer
from tests.fakes import ScriptedBackend

BUCKET = "jobs-bucket"


@dataclass
class Engine:
    """ScriptedBackend, with switches for the failures a container can have."""

    scripted: ScriptedBackend
    mode: str = "ok"  # ok | refuse | crash | break_mid_stream

    def run(self, request: ModelRequest) -> ModelResponse:
        if self.mode == "refuse":
            return ModelResponse.failure("context_length_exceeded", "prompt too long")
        if self.mode == "crash":
            raise RuntimeError("CUDA error")
        return self.scripted.run(request)

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        if self.mode != "break_mid_stream":
            if self.mode != "ok":
                yield self.run(request)
                return
            yield from self.scripted.stream(request)
            return
        yield StreamDelta(index=0, text="Hello ")
        raise RuntimeError("GPU fell off the bus")


@dataclass
class Local:
    server: SageMakerServer
    engine: Engine
    moto_url: str

    def client(self, **config: Any) -> Any:
        return _client(
            "sagemaker-runtime",
            self.server.url,
            Config(retries={"mode": "standard", "total_max_attempts": 1}, **config),
        )

    def s3(self) -> Any:
        return _client("s3", self.moto_url)

    def backend(self, endpoint: str = "gpu", **kwargs: Any) -> SageMakerBackend:
        client = self.client()
        backend = SageMakerBackend(endpoint, client=client, **kwargs)
        backend.__dict__["submit_client"] = client
        return backend


def _client(service: str, url: str, config: Config | None = None) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    s3 = _client("s3", moto_url)
    s3.create_bucket(Bucket=BUCKET)
    engine = Engine(ScriptedBackend(text="Hello there general Kenobi"))
    endpoints = {
        "gpu": LocalEndpoint("gpu", "cirrus-demo", concurrency=4),
        "busy": LocalEndpoint("busy", "cirrus-demo", concurrency=0),
        "gpu-async": LocalEndpoint(
            "gpu-async",
            "cirrus-demo",
            output_path=f"s3://{BUCKET}/jobs/output/",
            failure_path=f"s3://{BUCKET}/jobs/failure/",
        ),
    }
    server = SageMakerServer(("127.0.0.1", 0), endpoints, engine, s3_client=s3)
    server.start()
    try:
        yield Local(server, engine, moto_url)
    finally:
        server.stop()
        moto.stop()


@pytest.fixture(autouse=True)
def _reset(local: Local) -> None:
    local.engine.mode = "ok"


def chat(n: int = 1, text: str = "Tell me about Python") -> ModelRequest:
    return ModelRequest(
        op="chat",
        model="cirrus-demo",
        messages=(ChatMessage(role="user", content=text),),
        params=GenerationParams(max_tokens=8, n=n),
    )


def test_invoke_endpoint_round_trip(local: Local) -> None:
    response = local.backend().run(chat(n=2))
    assert response.ok and response.result is not None
    assert response.result.kind == "generation"
    assert [c.text for c in response.result.choices] == ["Hello there general Kenobi"] * 2
    assert response.result.prompt_tokens == 7
    # The engine saw the Messages API body turned back into a chat request.
    seen = local.engine.scripted.calls[-1]
    assert seen.messages[0].content == "Tell me about Python"
    assert seen.params.n == 2


def test_stream_reassembles_parts_cut_mid_line(local: Local) -> None:
    raw = local.client().invoke_endpoint_with_response_stream(
        EndpointName="gpu",
        Body=json.dumps(messages_request(chat(), stream=True)),
        ContentType="application/json",
    )
    parts = [e["PayloadPart"]["Bytes"] for e in raw["Body"] if "PayloadPart" in e]
    assert any(not p.endswith(b"\n") for p in parts), "the stand-in should split lines"

    items = list(local.backend().stream(chat()))
    deltas = [i for i in items if isinstance(i, StreamDelta)]
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert isinstance(final.result, GenerationResult)
    assert "".join(d.text for d in deltas).strip() == "Hello there general Kenobi"
    assert final.result.choices[0].text == "".join(d.text for d in deltas)
    assert final.result.completion_tokens == 2  # from the usage chunk


def test_container_refusal_is_the_clients_error(local: Local) -> None:
    local.engine.mode = "refuse"
    with pytest.raises(InvalidRequestError, match="prompt too long"):
        local.backend().run(chat())
    with pytest.raises(InvalidRequestError):
        next(iter(local.backend().stream(chat())))


def test_container_crash_is_unavailable_before_any_text(local: Local) -> None:
    local.engine.mode = "crash"
    with pytest.raises(BackendUnavailableError) as info:
        local.backend().run(chat())
    assert info.value.reason == "failing"


def test_overloaded_endpoint_is_throttled(local: Local) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        local.backend("busy").run(chat())
    assert info.value.reason == "throttled"


def test_unknown_endpoint_is_failing(local: Local) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        local.backend("nope").run(chat())
    assert info.value.reason == "failing"


def test_mid_stream_failure_after_text_is_failed(local: Local) -> None:
    local.engine.mode = "break_mid_stream"
    items = local.backend().stream(chat())
    first = next(items)
    assert isinstance(first, StreamDelta) and first.text == "Hello "
    with pytest.raises(BackendFailedError):
        list(items)


def test_async_inference_writes_output_to_s3(local: Local) -> None:
    s3 = local.s3()
    body = json.dumps(messages_request(chat(), stream=False)).encode()
    s3.put_object(Bucket=BUCKET, Key="jobs/input/t1.json", Body=body)
    backend = local.backend(async_endpoint_name="gpu-async")
    submission = backend.submit_async(f"s3://{BUCKET}/jobs/input/t1.json", "job-t1")
    assert submission.inference_id == "job-t1"
    assert submission.output_location.startswith(f"s3://{BUCKET}/jobs/output/")
    key = submission.output_location.removeprefix(f"s3://{BUCKET}/")
    deadline = time.monotonic() + 10
    while True:
        try:
            output = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            break
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, "async output never appeared"
            time.sleep(0.05)
    completion = json.loads(output)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Hello there general Kenobi"


def test_async_failure_goes_to_the_failure_location(local: Local) -> None:
    local.engine.mode = "crash"
    s3 = local.s3()
    body = json.dumps(messages_request(chat(), stream=False)).encode()
    s3.put_object(Bucket=BUCKET, Key="jobs/input/t2.json", Body=body)
    submission = local.backend(async_endpoint_name="gpu-async").submit_async(
        f"s3://{BUCKET}/jobs/input/t2.json", "job-t2"
    )
    key = submission.failure_location.removeprefix(f"s3://{BUCKET}/")
    deadline = time.monotonic() + 10
    while True:
        try:
            failure = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            break
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, "async failure never appeared"
            time.sleep(0.05)
    assert failure["error_type"] == "RuntimeError"
