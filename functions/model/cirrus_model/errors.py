"""Exceptions that carry a payload error code, so one place (service.to_failure) maps them.

Messages are written for the API's client: they may be shown verbatim, so they never contain
paths, stack traces or prompt text. Details go to the log only.
"""

from __future__ import annotations

from cirrus_common.payload import ModelErrorCode


class ModelFunctionError(Exception):
    code: ModelErrorCode = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(ModelFunctionError):
    code = "invalid_request"


class ModelNotFound(ModelFunctionError):
    code = "model_not_found"


class ContextLengthExceeded(ModelFunctionError):
    code = "context_length_exceeded"


class ModelLoadFailed(ModelFunctionError):
    code = "model_load_failed"
