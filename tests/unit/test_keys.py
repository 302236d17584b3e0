"""KeyStore over DynamoDB (moto): create, verify, list, revoke, usage plans."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from cirrus_common.keys import (
    KEY_PREFIX,
    KeyRecord,
    KeyStore,
    attach_usage_plan,
    disable_api_key,
    hash_key,
    is_well_formed,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TABLE = "cirrus-keys-test"


def create_keys_table(client: DynamoDBClient, name: str = TABLE) -> None:
    # The schema template.yaml declares for KeysTable.
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "key_hash", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
    )


@pytest.fixture
def store(fake_aws: None) -> Iterator[KeyStore]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_keys_table(client)
        yield KeyStore(TABLE, client=client)


def test_create_returns_plaintext_once_and_stores_only_the_hash(store: KeyStore) -> None:
    plaintext, record = store.create("alice")
    assert plaintext.startswith(KEY_PREFIX)
    assert is_well_formed(plaintext)
    assert record.key_hash == hash_key(plaintext)
    assert record.key_id == record.key_hash[:12]
    assert record.name == "alice"
    assert not record.revoked
    items = store.client.scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    assert plaintext not in repr(items)
    assert plaintext[len(KEY_PREFIX) :] not in repr(items)


def test_keys_are_unique_and_high_entropy(store: KeyStore) -> None:
    keys = {store.create(f"k{i}")[0] for i in range(20)}
    assert len(keys) == 20
    assert all(len(k) == len(KEY_PREFIX) + 43 for k in keys)


def test_verify_accepts_a_live_key(store: KeyStore) -> None:
    plaintext, record = store.create("alice")
    assert store.verify(plaintext) == record


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "sk-cirrus-",
        "sk-cirrus-short",
        "sk-other-" + "a" * 43,
        "sk-cirrus-" + "a" * 44,
        "sk-cirrus-" + "a" * 42 + "!",
        " sk-cirrus-" + "a" * 43,
    ],
)
def test_verify_rejects_malformed_keys_without_a_table_read(
    store: KeyStore, candidate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**_: Any) -> None:
        raise AssertionError("no table read for a malformed key")

    monkeypatch.setattr(store.client, "get_item", boom)
    assert store.verify(candidate) is None


def test_verify_rejects_unknown_well_formed_key(store: KeyStore) -> None:
    store.create("alice")
    assert store.verify(KEY_PREFIX + "b" * 43) is None


def test_revoke_by_key_id(store: KeyStore) -> None:
    plaintext, record = store.create("alice")
    other, _ = store.create("bob")
    assert store.revoke(record.key_id) is True
    assert store.verify(plaintext) is None
    assert store.verify(other) is not None
    assert store.revoke(record.key_id) is True  # idempotent
    assert store.revoke("nosuchkeyid0") is False
    assert [r.revoked for r in store.list() if r.key_id == record.key_id] == [True]


def test_expired_key_is_rejected_before_ttl_deletes_it(store: KeyStore) -> None:
    plaintext, _ = store.create("temp", expires_at=int(time.time()) - 1)
    assert store.verify(plaintext) is None
    live, _ = store.create("later", expires_at=int(time.time()) + 3600)
    assert store.verify(live) is not None


def test_list_returns_every_key_newest_first(store: KeyStore) -> None:
    created = [store.create(f"k{i}")[1] for i in range(3)]
    listed = store.list()
    assert {r.key_id for r in listed} == {r.key_id for r in created}
    assert [r.created_at for r in listed] == sorted((r.created_at for r in listed), reverse=True)


def test_record_round_trips_through_an_item() -> None:
    record = KeyRecord("h" * 64, "h" * 12, "n", 1, True, "apikey1", 99)
    assert KeyRecord.from_item(dict(record.to_item())) == record


def test_client_is_lazy_and_honours_the_environment(fake_aws: None) -> None:
    with mock_aws():
        store = KeyStore(TABLE)
        assert store._client is None
        create_keys_table(boto3.client("dynamodb"))
        plaintext, _ = store.create("lazy")
        assert store.verify(plaintext) is not None


def test_table_name_is_required() -> None:
    with pytest.raises(ValueError, match="CIRRUS_KEYS_TABLE"):
        KeyStore("")


def test_attach_usage_plan_and_disable(store: KeyStore) -> None:
    apigw = boto3.client("apigateway")
    plan = apigw.create_usage_plan(name="plan")
    _, record = store.create("alice")
    api_key_id = attach_usage_plan(apigw, plan["id"], record.name, record.usage_identifier)
    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [k["id"] for k in keys] == [api_key_id]
    assert apigw.get_api_key(apiKey=api_key_id, includeValue=True)["value"] == record.key_hash
    assert store.set_usage_plan_key_id(record.key_id, api_key_id)
    assert store.get(record.key_id) == KeyRecord(
        record.key_hash, record.key_id, "alice", record.created_at, False, api_key_id
    )
    assert not store.set_usage_plan_key_id("nosuchkeyid0", api_key_id)
    disable_api_key(apigw, api_key_id)
    assert apigw.get_api_key(apiKey=api_key_id)["enabled"] is False


def test_attach_usage_plan_leaves_no_orphan_key(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    apigw = boto3.client("apigateway")

    def refuse(**_: Any) -> None:
        raise RuntimeError("usage plan not found")

    monkeypatch.setattr(apigw, "create_usage_plan_key", refuse)
    with pytest.raises(RuntimeError):
        attach_usage_plan(apigw, "nosuchplan", "alice", "h" * 64)
    assert apigw.get_api_keys()["items"] == []


def test_one_bearer_parser_for_auth_authorizer_and_job_owners() -> None:
    from starlette.datastructures import Headers

    from cirrus_api.route_context import hints_from_headers
    from cirrus_common.keys import bearer_token

    assert bearer_token("Bearer sk-1") == bearer_token("  bearer   sk-1 ") == "sk-1"
    assert bearer_token("Basic sk-1") is None and bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    owners = {
        hints_from_headers(Headers({"authorization": spelling})).caller
        for spelling in ("Bearer sk-1", "bearer sk-1", "BEARER  sk-1 ")
    }
    assert len(owners) == 1 and "" not in owners
