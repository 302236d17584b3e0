"""ApiFunction's real Lambda entry (Mangum + Powertools) on the events in events/."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cirrus_api.app as api_app
from cirrus_api.dispatch import Dispatcher
from cirrus_common.observability import logger
from cirrus_common.settings import get_settings
from cirrus_local.functions import LocalLambdaContext
from tests.events import expected_status
from tests.fakes import ScriptedBackend

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CIRRUS_AUTH_ENABLED", "true")
    monkeypatch.setenv("CIRRUS_KEYS_TABLE", "unused-behind-the-authorizer")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(
        api_app, "build_dispatcher", lambda _s: Dispatcher({"lambda": ScriptedBackend()})
    )
    get_settings.cache_clear()
    api_app._mangum.cache_clear()
    yield api_app.handler
    api_app._mangum.cache_clear()
    get_settings.cache_clear()


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("api-*.json")))
def test_every_api_event(handler: Any, name: str) -> None:
    result = handler(_event(name), LocalLambdaContext("ApiFunction"))
    expected = expected_status(name)
    assert result["statusCode"] == expected, result["body"]
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    assert headers["x-request-id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" or "health" in name
    if "stream" in name:
        assert headers["content-type"].startswith("text/event-stream")
        assert result["body"].rstrip().endswith("data: [DONE]")
    else:
        body = json.loads(result["body"])
        assert ("error" in body) == (expected != 200)


def _run_and_capture(handler: Any, event: str, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    """Invoke, and return every JSON line written: log lines and EMF metric documents."""
    stream = io.StringIO()  # the Powertools logger's own stream was bound at import
    copy = logging.StreamHandler(stream)
    copy.setFormatter(logger("cirrus-api").registered_formatter)
    log = logging.getLogger("cirrus-api")  # the standard logger Powertools wraps
    log.addHandler(copy)
    try:
        handler(_event(event), LocalLambdaContext("ApiFunction"))
    finally:
        log.removeHandler(copy)
    output = capsys.readouterr().out + stream.getvalue()
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_streamed_tokens_are_logged_and_counted(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _run_and_capture(handler, "api-chat-completions-stream.json", capsys)
    access = [line for line in lines if line.get("message") == "request"]
    assert access[0]["prompt_tokens"] == 7 and access[0]["completion_tokens"] == 2
    emf = [line for line in lines if "_aws" in line]
    assert any(doc.get("CompletionTokens") == [2.0] for doc in emf)


def test_metrics_and_logs(handler: Any, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _run_and_capture(handler, "api-chat-completions.json", capsys)
    emf = [line for line in lines if "_aws" in line]
    names = {
        m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"Requests", "Latency", "PromptTokens", "CompletionTokens", "Route_lambda"} <= names
    access = [line for line in lines if line.get("message") == "request"]
    assert access and access[0]["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert access[0]["status"] == 200 and access[0]["route"] == "lambda"
    # No prompt text (nor the key) in any log line or metric.
    everything = json.dumps(lines)
    assert "What is a module?" not in everything
    assert "sk-cirrus-EXAMPLE" not in everything


def test_missing_key_without_authorizer_is_401(handler: Any) -> None:
    event = _event("api-models.json")
    del event["requestContext"]["authorizer"]
    del event["headers"]["Authorization"]
    del event["multiValueHeaders"]["Authorization"]
    result = handler(event, LocalLambdaContext("ApiFunction"))
    assert result["statusCode"] == 401
    assert json.loads(result["body"])["error"]["code"] == "invalid_api_key"
