"""Every file in events/ runs through its function's handler, with the local stack behind it.

The function comes from the file name's prefix (events/README.md). API events must answer
the status their name implies (tests/events.py); ModelFunction events must answer ok with a
result of the right kind; authorizer events allow a registered key and refuse a missing one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from cirrus_common.keys import KeyRecord, hash_key
from cirrus_common.settings import get_settings
from cirrus_local.functions import HANDLERS, LocalLambdaContext, load
from tests.events import expected_status
from tests.integration.conftest import RunningStack, run_cli

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
PREFIXES = {"api-": "ApiFunction", "model-": "ModelFunction", "authorizer": "AuthorizerFunction"}


def function_for(path: Path) -> str:
    for prefix, function in PREFIXES.items():
        if path.name.startswith(prefix):
            return function
    raise AssertionError(f"{path.name}: no function for this prefix (see events/README.md)")


def test_every_event_names_a_function() -> None:
    assert EVENTS, "events/ is empty"
    for path in EVENTS:
        assert function_for(path) in HANDLERS


def _register_event_key(event: dict[str, Any]) -> None:
    """Store the placeholder key an authorizer event carries, as `cirrus keys create` would."""
    header = event.get("headers", {}).get("Authorization", "")
    if not header.startswith("Bearer "):
        return
    record = KeyRecord(
        key_hash=hash_key(header.removeprefix("Bearer ")),
        key_id="evt00001",
        name="events",
        created_at=int(time.time()),
    )
    boto3.client("dynamodb").put_item(TableName=get_settings().keys_table, Item=record.to_item())


@pytest.mark.parametrize("path", EVENTS, ids=[p.name for p in EVENTS])
def test_event(running_stack: RunningStack, path: Path) -> None:
    event = json.loads(path.read_text())
    function = function_for(path)
    handler = load(HANDLERS[function])
    context = LocalLambdaContext(function_name=function)
    if function == "ApiFunction":
        result = handler(event, context)
        expected = expected_status(path.name)
        assert result["statusCode"] == expected, result["body"]
        if "stream" not in path.name:
            body = json.loads(result["body"])
            assert ("error" in body) == (expected != 200)
    elif function == "ModelFunction":
        result = handler(event, context)
        assert result["ok"] is True, result
        assert result["result"]["kind"] == (
            "embeddings" if event["op"] == "embeddings" else "generation"
        )
    else:
        _register_event_key(event)
        if "missing" in path.name:
            with pytest.raises(Exception, match=r"^Unauthorized$"):
                handler(event, context)
        else:
            policy = handler(event, context)["policyDocument"]["Statement"][0]
            assert policy["Effect"] == "Allow"


def test_cirrus_invoke_prints_the_answer_like_sam_local_invoke() -> None:
    """The CLI starts its own local stack, runs the event, prints only the answer on stdout."""
    done = run_cli("invoke", "ModelFunction", "-e", str(ROOT / "events" / "model-chat.json"))
    answer = json.loads(done.stdout)
    assert answer["ok"] is True
    assert answer["result"]["choices"][0]["text"]


def test_cirrus_invoke_reports_a_raised_error_as_lambda_does() -> None:
    event = str(ROOT / "events" / "authorizer-missing-key.json")
    done = run_cli("invoke", "AuthorizerFunction", "-e", event, check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"errorMessage": "Unauthorized", "errorType": "Unauthorized"}
    assert "Traceback" not in done.stderr
