"""The Lambda stand-in speaks what boto3's Lambda client expects, limits included."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cirrus_local.lambda_endpoint import SYNC_PAYLOAD_LIMIT, LambdaServer, LocalFunction

release = threading.Event()
entered = threading.Event()


def echo(event: Any, _context: Any) -> Any:
    if event.get("wait"):
        entered.set()
        release.wait(10)
    if event.get("big"):
        return {"blob": "x" * (SYNC_PAYLOAD_LIMIT + 1)}
    if event.get("boom"):
        raise RuntimeError("boom")
    return {"echo": event}


def chunks(event: Any) -> Iterator[bytes]:
    yield b'{"type":"delta","index":0,"text":"he'  # split mid-line on purpose
    yield b'llo"}\n{"done":true}\n'


@pytest.fixture
def client(fake_aws: None) -> Iterator[Any]:
    function = LocalFunction("Echo", "tests.handler", "tests.stream", concurrency=1)
    function._loaded.update({"tests.handler": echo, "tests.stream": chunks})
    server = LambdaServer(("127.0.0.1", 0), {"Echo": function})
    server.start()
    yield boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    server.shutdown()
    server.server_close()


def test_invoke_and_function_errors(client: Any) -> None:
    ok = client.invoke(FunctionName="Echo", Payload=b'{"a": 1}')
    assert json.loads(ok["Payload"].read()) == {"echo": {"a": 1}}
    failed = client.invoke(
        FunctionName="arn:aws:lambda:us-east-1:1:function:Echo:live", Payload=b'{"boom": 1}'
    )
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "RuntimeError"


def test_payload_limits_are_lambdas(client: Any) -> None:
    too_big = client.invoke(FunctionName="Echo", Payload=b'{"big": 1}')
    assert too_big["FunctionError"] == "Unhandled"
    assert json.loads(too_big["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="Echo", Payload=b'"' + b"x" * SYNC_PAYLOAD_LIMIT + b'"')
    assert info.value.response["Error"]["Code"] == "RequestTooLargeException"


def test_unknown_function_and_concurrency_limit(client: Any) -> None:
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="Nope", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    release.clear()
    entered.clear()
    busy = threading.Thread(
        target=lambda: client.invoke(FunctionName="Echo", Payload=b'{"wait": 1}')
    )
    busy.start()
    try:
        assert entered.wait(10)  # the first call now holds the only slot
        with pytest.raises(ClientError) as throttled:
            client.invoke(FunctionName="Echo", Payload=b"{}")
        assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    finally:
        release.set()
        busy.join()


def test_response_stream_is_an_event_stream(client: Any) -> None:
    response = client.invoke_with_response_stream(FunctionName="Echo", Payload=b"{}")
    events = list(response["EventStream"])
    payload = b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
    assert payload == b'{"type":"delta","index":0,"text":"hello"}\n{"done":true}\n'
    assert "InvokeComplete" in events[-1] and not events[-1]["InvokeComplete"].get("ErrorCode")
