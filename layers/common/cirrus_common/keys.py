"""API keys: create, verify, list and revoke them in the keys table (DynamoDB).

The same code runs in the Lambda authorizer, in ApiFunction's own check and in the local
stack (against moto), so a key behaves the same everywhere.

A key is ``sk-cirrus-`` followed by 32 random bytes (url-safe base64). Only its SHA-256 hex
digest is stored: the key is high-entropy, so a fast unsalted hash is right here. Salting and
slow hashes (bcrypt, scrypt, argon2) exist to slow down guessing of low-entropy passwords; a
256-bit random secret cannot be guessed, and a fast hash keeps the authorizer's lookup a
single GetItem. The plaintext is returned once, by `KeyStore.create`, and never logged.

Usage plans: API Gateway counts requests per *API key value*. The authorizer returns the key's
hash as `usageIdentifierKey`, and `attach_usage_plan` creates the API Gateway key with that
same value, so the bearer secret itself is never stored in API Gateway either.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_apigateway.client import APIGatewayClient
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

KEY_PREFIX = "sk-cirrus-"
_SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of [A-Za-z0-9_-]; anything else is not one of our keys.
_KEY_RE = re.compile(r"sk-cirrus-[A-Za-z0-9_-]{43}")
KEY_ID_LENGTH = 12


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (the scheme in any case, spaces
    around it ignored), or None. The authorizer, the API and job ownership all read it here,
    so they agree on who a caller is."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of a key: the only form in which a key is stored."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def is_well_formed(plaintext: str) -> bool:
    """True when the string has the shape of a Cirrus key (checked before any table read)."""
    return _KEY_RE.fullmatch(plaintext) is not None


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


@dataclass(frozen=True)
class KeyRecord:
    """What the table holds for one key. Nothing here can be used to authenticate."""

    key_hash: str
    key_id: str
    name: str
    created_at: int
    revoked: bool = False
    usage_plan_key_id: str | None = None
    expires_at: int | None = None

    @property
    def usage_identifier(self) -> str:
        """The value API Gateway's key for this record holds (usage plans count by it)."""
        return self.key_hash

    def is_active(self, now: float | None = None) -> bool:
        if self.revoked:
            return False
        # DynamoDB's TTL deletes expired items only eventually (up to days later).
        return self.expires_at is None or self.expires_at > (time.time() if now is None else now)

    def to_item(self) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "key_hash": {"S": self.key_hash},
            "key_id": {"S": self.key_id},
            "name": {"S": self.name},
            "created_at": {"N": str(self.created_at)},
            "revoked": {"BOOL": self.revoked},
        }
        if self.usage_plan_key_id:
            item["usage_plan_key_id"] = {"S": self.usage_plan_key_id}
        if self.expires_at is not None:
            item["expires_at"] = {"N": str(self.expires_at)}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> KeyRecord:
        expires = item.get("expires_at")
        plan_key = item.get("usage_plan_key_id")
        return cls(
            key_hash=item["key_hash"]["S"],
            key_id=item["key_id"]["S"],
            name=item.get("name", {}).get("S", ""),
            created_at=int(item.get("created_at", {}).get("N", "0")),
            revoked=bool(item.get("revoked", {}).get("BOOL", False)),
            usage_plan_key_id=plan_key["S"] if plan_key else None,
            expires_at=int(expires["N"]) if expires else None,
        )


class KeyStore:
    """API keys in one DynamoDB table (partition key `key_hash`, TTL attribute `expires_at`).

    The boto3 client is created on first use, so importing this module and building a store
    cost nothing at Lambda init; boto3 itself honours AWS_ENDPOINT_URL (the local stack).
    """

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        if not table_name:
            raise ValueError("KeyStore needs a table name (CIRRUS_KEYS_TABLE)")
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def create(self, name: str, *, expires_at: int | None = None) -> tuple[str, KeyRecord]:
        """Make a new key. Returns (plaintext, record); the plaintext is not kept anywhere."""
        plaintext = generate_key()
        digest = hash_key(plaintext)
        record = KeyRecord(
            key_hash=digest,
            key_id=digest[:KEY_ID_LENGTH],
            name=name,
            created_at=int(time.time()),
            expires_at=expires_at,
        )
        self.client.put_item(
            TableName=self.table_name,
            Item=record.to_item(),
            ConditionExpression="attribute_not_exists(key_hash)",
        )
        return plaintext, record

    def verify(self, plaintext: str) -> KeyRecord | None:
        """The record of an active key, or None for anything else (malformed, unknown,
        revoked, expired). Table errors propagate: callers must fail closed on them."""
        if not isinstance(plaintext, str) or not is_well_formed(plaintext):
            return None
        digest = hash_key(plaintext)
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"key_hash": {"S": digest}},
            # Eventually consistent reads are half the price; a revocation shows within a
            # second here, well inside the authorizer's own cache TTL.
            ConsistentRead=False,
        )
        item = response.get("Item")
        if item is None:
            return None
        record = KeyRecord.from_item(dict(item))
        # The lookup was by digest already; compare again in constant time so that no code
        # path ever branches on a partial match of attacker-controlled input.
        if not hmac.compare_digest(record.key_hash, digest):
            return None
        return record if record.is_active() else None

    def list(self) -> list[KeyRecord]:
        """Every key, newest first (a Scan: the table holds one small item per key)."""
        records: list[KeyRecord] = []
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name):
            records.extend(KeyRecord.from_item(dict(item)) for item in page.get("Items", []))
        return sorted(records, key=lambda r: (r.created_at, r.key_id), reverse=True)

    def get(self, key_id: str) -> KeyRecord | None:
        """The record with this public id, or None."""
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table_name,
            FilterExpression="key_id = :id",
            ExpressionAttributeValues={":id": {"S": key_id}},
        ):
            for item in page.get("Items", []):
                return KeyRecord.from_item(dict(item))
        return None

    def revoke(self, key_id: str) -> bool:
        """Mark the key revoked. True if it exists (revoking twice is fine), else False."""
        return self._update(key_id, "SET revoked = :v", {":v": {"BOOL": True}})

    def set_usage_plan_key_id(self, key_id: str, api_key_id: str) -> bool:
        """Remember the API Gateway key created for this record (see attach_usage_plan)."""
        return self._update(key_id, "SET usage_plan_key_id = :v", {":v": {"S": api_key_id}})

    def _update(
        self, key_id: str, expression: str, values: dict[str, AttributeValueTypeDef]
    ) -> bool:
        record = self.get(key_id)
        if record is None:
            return False
        self.client.update_item(
            TableName=self.table_name,
            Key={"key_hash": {"S": record.key_hash}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(key_hash)",
            ExpressionAttributeValues=values,
        )
        return True


def attach_usage_plan(
    apigw_client: APIGatewayClient, usage_plan_id: str, name: str, key_value: str
) -> str:
    """Create an API Gateway API key with `key_value` and add it to the usage plan.

    Pass `record.usage_identifier` as key_value: it is what the authorizer returns as
    `usageIdentifierKey`. Returns the API Gateway key id (store it with
    KeyStore.set_usage_plan_key_id). On failure no orphan key is left behind.
    """
    created = apigw_client.create_api_key(
        name=name, value=key_value, enabled=True, description="Cirrus API key (usage plan)"
    )
    api_key_id = created["id"]
    try:
        apigw_client.create_usage_plan_key(
            usagePlanId=usage_plan_id, keyId=api_key_id, keyType="API_KEY"
        )
    except Exception:
        apigw_client.delete_api_key(apiKey=api_key_id)
        raise
    return api_key_id


def disable_api_key(apigw_client: APIGatewayClient, api_key_id: str) -> None:
    """Turn a revoked key's API Gateway key off, so usage plans stop honouring it at once."""
    apigw_client.update_api_key(
        apiKey=api_key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
