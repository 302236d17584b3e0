"""Bearer-key authentication for the API.

Behind API Gateway the Lambda authorizer has already checked the key (and the gateway cached
its answer), so a request that carries the authorizer's context is trusted as is. Anywhere
else (the local stack, a function URL) the app checks the key itself, with the same KeyStore
code the authorizer uses. Verified keys are remembered briefly so a burst costs one
DynamoDB read; a revoked key stops working within KEY_CACHE_TTL_S.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request

from cirrus_common.errors import AuthenticationError, ServiceUnavailableError
from cirrus_common.keys import bearer_token

KEY_CACHE_TTL_S = 60.0


class KeyVerifier(Protocol):
    def verify(self, plaintext: str) -> Any | None: ...


class Authenticator:
    def __init__(self, enabled: bool, verifier: KeyVerifier | None) -> None:
        if enabled and verifier is None:
            raise ValueError("auth is enabled but no key store is configured")
        self.enabled = enabled
        self._verifier = verifier
        self._cache: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> None:
        if not self.enabled:
            return
        event = request.scope.get("aws.event") or {}
        if (event.get("requestContext") or {}).get("authorizer"):
            return  # API Gateway's authorizer allowed this request
        header = request.headers.get("authorization", "")
        if not header:
            raise AuthenticationError("Missing API key: send it as 'Authorization: Bearer <key>'.")
        key = bearer_token(header)
        if key is None:
            raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
        if not self._known(key):
            raise AuthenticationError("Incorrect API key provided.")

    def _known(self, key: str) -> bool:
        fingerprint = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            expires = self._cache.get(fingerprint)
            if expires is not None and expires > now:
                return True
        assert self._verifier is not None
        try:
            record = self._verifier.verify(key)
        except (ClientError, BotoCoreError) as exc:  # the keys table is unreachable: retry
            raise ServiceUnavailableError(
                "Keys cannot be checked right now; retry shortly.", retry_after=5
            ) from exc
        if record is None:
            return False
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[fingerprint] = now + KEY_CACHE_TTL_S
        return True
