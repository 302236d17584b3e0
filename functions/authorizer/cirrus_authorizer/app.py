"""Lambda REQUEST authorizer: `Authorization: Bearer sk-cirrus-...` -> an IAM policy.

API Gateway calls this before any route but /health and caches the answer per Authorization
header value (AuthorizerResultTtlInSeconds in template.yaml). Because one cached answer is
reused for every route, the policy allows the whole stage (`<api>/<stage>/*/*`), not just the
method that happened to be called first.

The answer also carries:
- `usageIdentifierKey`: the key's hash, which is the value of its API Gateway API key, so the
  usage plan (ApiKeySourceType AUTHORIZER) applies per-key rate limits and quotas;
- `context.key_id` / `context.key_name`: readable in ApiFunction's event and the access log.

Missing, malformed, unknown, revoked or expired keys raise `Unauthorized`, which API Gateway
turns into a 401 (the UNAUTHORIZED gateway response, in OpenAI's error shape). A table error
raises anything else, which API Gateway turns into a 500 (AUTHORIZER_FAILURE): fail closed.
Neither the key nor the event is ever logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cirrus_common.keys import KeyStore
from cirrus_common.keys import bearer_token as parse_bearer
from cirrus_common.settings import get_settings

logger = Logger(service="cirrus-authorizer")

_store: KeyStore | None = None


class Unauthorized(Exception):
    """Raised to make API Gateway answer 401 (it matches the exact message "Unauthorized")."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def get_store() -> KeyStore:
    """The process's KeyStore, built on first use (the boto3 client too)."""
    global _store  # noqa: PLW0603 - one store per Lambda execution environment
    if _store is None:
        _store = KeyStore(get_settings().keys_table)
    return _store


def set_store(store: KeyStore | None) -> None:
    """Swap the store (tests, the local stack)."""
    global _store  # noqa: PLW0603
    _store = store


def bearer_token(headers: Mapping[str, Any] | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (names and scheme are
    case-insensitive), or None."""
    for name, value in (headers or {}).items():
        if name.lower() == "authorization" and isinstance(value, str):
            return parse_bearer(value)
    return None


def authorize(event: Mapping[str, Any], store: KeyStore) -> dict[str, Any]:
    """The authorizer's answer for one REQUEST event; raises Unauthorized."""
    token = bearer_token(event.get("headers"))
    if token is None:
        logger.info("rejected: no bearer token")
        raise Unauthorized
    record = store.verify(token)
    if record is None:
        logger.info("rejected: malformed, unknown, revoked or expired key")
        raise Unauthorized
    arn = parse_api_gateway_arn(str(event["methodArn"]))
    response = APIGatewayAuthorizerResponse(
        principal_id=record.key_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"key_id": record.key_id, "key_name": record.name},
        usage_identifier_key=record.usage_identifier,
        partition=arn.partition,
    )
    response.allow_all_routes()
    logger.info("authorized", extra={"key_id": record.key_id})
    return response.asdict()


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize(event, get_store())
