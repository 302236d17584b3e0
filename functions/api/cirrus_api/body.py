"""Strict JSON for request bodies, checked before any model validation.

Python's json module accepts things an API must not: NaN/Infinity literals, duplicate keys
(last one silently wins), lone surrogate escapes that cannot be encoded back to UTF-8, and
nesting deep enough to blow the recursion limit. Each is refused here with a 400.
"""

from __future__ import annotations

import json
from typing import Any

from cirrus_common.errors import InvalidRequestError, PayloadTooLargeError

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise InvalidRequestError(f"Invalid JSON: {name} is not allowed", code="invalid_json")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidRequestError(f"Invalid JSON: duplicate key {key!r}", code="invalid_json")
        obj[key] = value
    return obj


def _check_strings_and_depth(value: Any) -> None:
    # Iterative, so that hostile nesting cannot reach Python's recursion limit here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequestError(
                f"Invalid JSON: nested deeper than {MAX_DEPTH} levels", code="invalid_json"
            )
        if isinstance(item, str):
            _check_encodable(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_encodable(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _check_encodable(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            "Invalid JSON: string contains a lone surrogate escape", code="invalid_json"
        ) from None


def parse_json_body(raw: bytes, max_bytes: int) -> Any:
    """Decode and parse a request body, or raise the client error that describes why not."""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"Request body is larger than the {max_bytes}-byte limit")
    if not raw.strip():
        raise InvalidRequestError(
            "Request body is empty; expected a JSON object", code="invalid_json"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("Request body is not valid UTF-8", code="invalid_json") from None
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            code="invalid_json",
        ) from None
    except RecursionError:  # the C scanner guards its own recursion; depth is capped below
        raise InvalidRequestError("Invalid JSON: nested too deeply", code="invalid_json") from None
    _check_strings_and_depth(value)
    if not isinstance(value, dict):
        raise InvalidRequestError("Request body must be a JSON object", code="invalid_json")
    return value
