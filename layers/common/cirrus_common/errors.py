"""Errors in OpenAI's shape, with the HTTP status the openai SDK expects for each class.

Every error that leaves Cirrus, from any layer, is one of these turned into
`{"error": {"message", "type", "param", "code"}}` by a single handler in the API app.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cirrus_common.payload import ModelError


class CirrusError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class InvalidRequestError(CirrusError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(CirrusError):
    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(CirrusError):
    status = 403
    type = "invalid_request_error"
    default_code = "permission_denied"


class NotFoundError(CirrusError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowedError(CirrusError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLargeError(CirrusError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimitError(CirrusError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class BackendError(CirrusError):
    """The model backend failed while handling a valid request."""

    status = 502
    type = "server_error"
    default_code = "backend_error"


class ServiceUnavailableError(CirrusError):
    """No backend can take the request now; the client should retry later."""

    status = 503
    type = "server_error"
    default_code = "service_unavailable"


class InternalError(CirrusError):
    status = 500
    type = "server_error"
    default_code = "internal_error"


def from_model_error(error: ModelError) -> CirrusError:
    """Map ModelFunction's structured error to the error the client sees."""
    match error.code:
        case "invalid_request" | "context_length_exceeded":
            return InvalidRequestError(error.message, param=error.param, code=error.code)
        case "model_not_found":
            return NotFoundError(error.message, param=error.param or "model", code=error.code)
        case "out_of_memory":
            return ServiceUnavailableError(
                "The model backend ran out of memory; retry with a shorter request.",
                code=error.code,
                retry_after=5,
            )
        case "model_load_failed":
            return ServiceUnavailableError(
                "The model could not be loaded.", code=error.code, retry_after=30
            )
        case _:
            return BackendError("The model backend failed.", code=error.code)
