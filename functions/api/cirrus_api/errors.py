"""The one place where exceptions become OpenAI-shaped error responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cirrus_common.errors import (
    AuthenticationError,
    CirrusError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)


def error_response(exc: CirrusError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


_SCALAR_TAGS = {"str", "int", "float", "bool", "none"}


def _is_union_tag(part: str) -> bool:
    """pydantic names the union member it tried ("str", "list[int]") inside error paths."""
    return part in _SCALAR_TAGS or part.startswith(
        ("list[", "dict[", "tuple[", "function-", "constrained-", "literal[")
    )


def _most_telling(errors: list[Any]) -> Any:
    """For a field that is a union, pydantic reports every branch it tried. The branch whose
    type matched but whose value did not ("at most 4 items") says what to fix; "should be a
    valid string" from the branches whose type did not match does not."""
    field = tuple(errors[0].get("loc", ()))[:1]
    same_field = [e for e in errors if tuple(e.get("loc", ()))[:1] == field]
    specific = [e for e in same_field if not str(e.get("type", "")).endswith("_type")]
    return specific[0] if specific else errors[0]


def validation_error(errors: list[Any]) -> InvalidRequestError:
    """The most telling pydantic error, phrased for a person, with its field path as `param`."""
    if not errors:
        return InvalidRequestError("Invalid request body")
    first = _most_telling(errors)
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body",)]
    # Unions report every branch tried (e.g. "prompt.str", "prompt.list[str]"); keep the field.
    loc = [p for p in loc if not _is_union_tag(p)]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if param and not message.startswith(param.split(".")[0] + ":"):
        message = f"{param}: {message}"
    return InvalidRequestError(message, param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    async def on_cirrus(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CirrusError)
        return error_response(exc)

    async def on_pydantic(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError | RequestValidationError)
        return error_response(validation_error(list(exc.errors())))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        where = f"{request.method} {request.url.path}"
        error: CirrusError
        if exc.status_code == 404:
            error = NotFoundError(f"Unknown route: {where}", code="unknown_route")
        elif exc.status_code == 405:
            error = MethodNotAllowedError(f"Method not allowed: {where}")
        elif exc.status_code == 401:
            error = AuthenticationError(str(exc.detail))
        elif exc.status_code == 413:
            error = PayloadTooLargeError(str(exc.detail))
        else:
            error = InvalidRequestError(str(exc.detail), code=f"http_{exc.status_code}")
            error.status = exc.status_code  # type: ignore[misc]
        response = error_response(error)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405, as RFC 9110 asks
        return response

    app.add_exception_handler(CirrusError, on_cirrus)
    app.add_exception_handler(ValidationError, on_pydantic)
    app.add_exception_handler(RequestValidationError, on_pydantic)
    app.add_exception_handler(StarletteHTTPException, on_http)
