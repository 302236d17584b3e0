"""Per-key token buckets: 429 with Retry-After when a caller exceeds its rate.

In AWS the API Gateway usage plan is the limiter (it counts across every container); this
one counts per process and serves the local stack and deployments without a gateway.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from fastapi import Request

from cirrus_common.errors import RateLimitError

_MAX_BUCKETS = 10_000


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = max(1, burst or math.ceil(rate_per_s))
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last refill)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __call__(self, request: Request) -> None:
        if not self.enabled:
            return
        header = request.headers.get("authorization", "")
        # Hash the key: the bucket table must never hold key material.
        caller = (
            hashlib.sha256(header.encode()).hexdigest()
            if header
            else (request.client.host if request.client else "anonymous")
        )
        wait = self.take(caller)
        if wait > 0:
            raise RateLimitError(
                f"Rate limit reached: {self.rate:g} requests per second; retry shortly.",
                retry_after=max(1, math.ceil(wait)),
            )

    def take(self, caller: str, now: float | None = None) -> float:
        """Spend one token; return 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                if len(self._buckets) >= _MAX_BUCKETS and caller not in self._buckets:
                    self._buckets.clear()
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
