"""AuthorizerFunction: Bearer key -> IAM policy, usage identifier and context (moto)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cirrus_authorizer import app
from cirrus_common.keys import KeyRecord, KeyStore, hash_key

ROOT = Path(__file__).resolve().parents[2]

TABLE = "cirrus-keys-authz"
EVENT = json.loads((ROOT / "events" / "authorizer.json").read_text())
MISSING_KEY_EVENT = json.loads((ROOT / "events" / "authorizer-missing-key.json").read_text())
SAMPLE_KEY = EVENT["headers"]["Authorization"].removeprefix("Bearer ")


class FakeContext:
    function_name = "cirrus-authorizer"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cirrus-authorizer"
    aws_request_id = "req-1"


CONTEXT: Any = FakeContext()  # duck-typed stand-in for Powertools' LambdaContext


@pytest.fixture
def store(fake_aws: None) -> Iterator[KeyStore]:
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "key_hash", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
        )
        store = KeyStore(TABLE, client=client)
        app.set_store(store)
        yield store
        app.set_store(None)


def with_auth(value: str | None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(EVENT)
    event["headers"].pop("Authorization")
    if value is not None:
        event["headers"]["authorization"] = value
    return event


def seed_sample_key(store: KeyStore) -> KeyRecord:
    digest = hash_key(SAMPLE_KEY)
    record = KeyRecord(digest, digest[:12], "events", 1764806400)
    store.client.put_item(TableName=TABLE, Item=record.to_item())
    return record


def test_sample_event_is_allowed_for_the_whole_stage(store: KeyStore) -> None:
    record = seed_sample_key(store)
    answer = app.handler(EVENT, CONTEXT)
    assert answer["principalId"] == record.key_id
    assert answer["policyDocument"]["Statement"] == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/*/*"],
        }
    ]
    assert answer["usageIdentifierKey"] == record.key_hash
    assert answer["context"] == {"key_id": record.key_id, "key_name": "events"}


def test_created_key_is_allowed_with_any_header_case(store: KeyStore) -> None:
    plaintext, record = store.create("alice")
    for header in (f"Bearer {plaintext}", f"bearer {plaintext}", f"  BEARER   {plaintext} "):
        answer = app.authorize(with_auth(header), store)
        assert answer["context"]["key_id"] == record.key_id


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "sk-cirrus-" + "a" * 43],
)
def test_missing_or_malformed_header_is_unauthorized(store: KeyStore, header: str | None) -> None:
    with pytest.raises(app.Unauthorized, match=r"^Unauthorized$"):
        app.authorize(with_auth(header), store)


def test_missing_key_event_is_unauthorized(store: KeyStore) -> None:
    with pytest.raises(app.Unauthorized):
        app.handler(MISSING_KEY_EVENT, CONTEXT)


def test_unknown_and_revoked_keys_are_unauthorized(
    store: KeyStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(app.Unauthorized):
        app.authorize(with_auth(f"Bearer {SAMPLE_KEY}"), store)
    plaintext, record = store.create("bob")
    store.revoke(record.key_id)
    with pytest.raises(app.Unauthorized):
        app.handler(with_auth(f"Bearer {plaintext}"), CONTEXT)
    logged = capsys.readouterr()
    assert plaintext not in logged.out + logged.err
    assert SAMPLE_KEY not in logged.out + logged.err


def test_table_errors_fail_closed_with_a_non_401(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**_: Any) -> None:
        raise RuntimeError("dynamodb unavailable")

    monkeypatch.setattr(store.client, "get_item", down)
    with pytest.raises(RuntimeError):
        app.authorize(with_auth(f"Bearer {SAMPLE_KEY}"), store)


def test_store_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from cirrus_common import settings

    monkeypatch.setenv(settings.ENV_KEYS_TABLE, "from-env")
    settings.get_settings.cache_clear()
    app.set_store(None)
    try:
        assert app.get_store().table_name == "from-env"
    finally:
        app.set_store(None)
        settings.get_settings.cache_clear()
