"""What every backend offers, and the errors that let the dispatcher fall back or back off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol

from cirrus_common.errors import BackendError, ServiceUnavailableError
from cirrus_common.payload import ModelRequest, ModelResponse, StreamDelta

UnavailableReason = Literal["throttled", "not_ready", "failing", "timeout", "circuit_open"]

StreamItem = StreamDelta | ModelResponse


class BackendUnavailableError(ServiceUnavailableError):
    """The backend could not take the request (throttled, cold, failing, timed out).

    Nothing was generated, so the request may safely run elsewhere.
    """

    def __init__(self, backend: str, reason: UnavailableReason, retry_after: int = 1) -> None:
        super().__init__(
            "The model backend is busy or unavailable; retry shortly.",
            code="backend_unavailable",
            retry_after=retry_after,
        )
        self.backend = backend
        self.reason = reason


class BackendFailedError(BackendError):
    """The backend accepted the request and then failed (crash, malformed answer)."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__("The model backend failed while handling the request.")
        self.backend = backend
        self.detail = detail  # for logs only; never sent to the client


class Backend(Protocol):
    @property
    def name(self) -> str:
        """lambda or sagemaker: what x-cirrus-route reports."""
        ...

    def run(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        """Yield StreamDelta items as text is produced, then exactly one ModelResponse."""
        ...
