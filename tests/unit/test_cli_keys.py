"""`cirrus keys` against a deployed stack (moto): the key lands on the usage plan as its
hash, and revoking it disables the API Gateway key at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cirrus_local.cli import main

TABLE = "cirrus-keys-cli"


@pytest.fixture
def stack(fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key_hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        apigw = boto3.client("apigateway")
        plan = apigw.create_usage_plan(name="cirrus")["id"]
        monkeypatch.setenv("CIRRUS_KEYS_TABLE", TABLE)
        monkeypatch.setenv("CIRRUS_USAGE_PLAN_ID", plan)
        yield apigw, plan


def test_create_attaches_and_revoke_disables(
    stack: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    apigw, plan = stack
    assert main(["keys", "create", "alice"]) == 0
    out = capsys.readouterr().out
    key_id = out.split("key id: ")[1].split()[0]
    plaintext = out.split("store it now): ")[1].strip()
    (api_key,) = apigw.get_usage_plan_keys(usagePlanId=plan)["items"]
    stored = apigw.get_api_key(apiKey=api_key["id"], includeValue=True)
    assert stored["value"] != plaintext and stored["enabled"] is True  # the hash, not the key
    assert main(["keys", "revoke", key_id]) == 0
    assert apigw.get_api_key(apiKey=api_key["id"])["enabled"] is False
