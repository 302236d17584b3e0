"""A circuit breaker per backend: stop calling one that keeps failing, probe it after a pause.

closed     calls pass; `failure_threshold` failures in a row open the circuit.
open       calls fail at once with BackendUnavailableError("circuit_open") and a Retry-After
           of the time left, so the dispatcher falls back without waiting on a dead backend.
half-open  after `cooldown_s` one call goes through as a probe (others are still refused):
           success closes the circuit, failure opens it for another cool-down.

What counts: BackendUnavailableError (not ready, failing, timeout) and BackendFailedError are
failures. Throttling is not (the backend is alive, only busy) and neither are the client's
own errors (400s): they leave the count as it was. State is per process, which in Lambda
means per warm execution environment: each learns on its own, which is enough to stop a
burst from piling onto a backend that is down.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator
from typing import Literal

from cirrus_api.backends.base import (
    Backend,
    BackendFailedError,
    BackendUnavailableError,
    StreamItem,
)
from cirrus_common.errors import CirrusError
from cirrus_common.payload import ModelRequest, ModelResponse

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        with self._lock:
            if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
                return "half_open"
            return self._state

    def before_call(self) -> None:
        """Let the call through, or raise BackendUnavailableError("circuit_open")."""
        with self._lock:
            if self._state == "closed":
                return
            now = self._clock()
            if self._state == "open":
                left = self.cooldown_s - (now - self._opened_at)
                if left > 0:
                    raise BackendUnavailableError(
                        self.name, "circuit_open", retry_after=max(1, math.ceil(left))
                    )
                self._state = "half_open"
            if self._probing:  # half-open: one probe at a time
                raise BackendUnavailableError(self.name, "circuit_open", retry_after=1)
            self._probing = True

    def success(self) -> None:
        with self._lock:
            self._state = "closed"
            self._failures = 0
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                self._state = "open"
                self._opened_at = self._clock()

    def neutral(self) -> None:
        """An outcome that says nothing about the backend's health (throttled, client error)."""
        with self._lock:
            self._probing = False

    def record(self, exc: BaseException | None) -> None:
        if exc is None:
            self.success()
        elif isinstance(exc, BackendUnavailableError):
            if exc.reason == "throttled":
                self.neutral()
            elif exc.reason != "circuit_open":
                self.failure()
        elif isinstance(exc, BackendFailedError):
            self.failure()
        elif isinstance(exc, CirrusError | GeneratorExit):
            self.neutral()  # the client's own error, or a client that went away
        else:
            self.failure()


class GuardedBackend:
    """A Backend behind a CircuitBreaker; the same protocol, so the dispatcher sees no change."""

    def __init__(self, backend: Backend, breaker: CircuitBreaker) -> None:
        self.backend = backend
        self.breaker = breaker

    @property
    def name(self) -> str:
        return self.backend.name

    def run(self, request: ModelRequest) -> ModelResponse:
        self.breaker.before_call()
        try:
            response = self.backend.run(request)
        except BaseException as exc:
            self.breaker.record(exc)
            raise
        self.breaker.success()
        return response

    def stream(self, request: ModelRequest) -> Generator[StreamItem]:
        self.breaker.before_call()
        try:
            for item in self.backend.stream(request):
                if isinstance(item, ModelResponse):
                    # The final answer arrived: a success, even if the consumer stops
                    # reading here and never resumes this generator.
                    self.breaker.success()
                yield item
        except BaseException as exc:
            self.breaker.record(exc)
            raise
