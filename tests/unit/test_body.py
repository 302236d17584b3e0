"""Strict JSON parsing of request bodies."""

from __future__ import annotations

import pytest

from cirrus_api.body import MAX_DEPTH, parse_json_body
from cirrus_common.errors import InvalidRequestError, PayloadTooLargeError

LIMIT = 10_000


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"{", "Invalid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": {"b": 1, "b": 1}}', "duplicate key"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"a":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", "nested"),
        (b"[" * 100_000, "nested"),
    ],
)
def test_rejects(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_json_body(raw, LIMIT if len(raw) < LIMIT else len(raw))
    assert fragment in info.value.message
    assert info.value.status == 400


def test_size_cap_is_checked_first() -> None:
    with pytest.raises(PayloadTooLargeError):
        parse_json_body(b'{"a": "' + b"x" * LIMIT + b'"}', LIMIT)


def test_accepts_valid_unicode_and_nesting_at_the_limit() -> None:
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    raw = ('{"a": "h\\u00e9llo \\ud83d\\ude00", "b": ' + nested + "}").encode()
    assert parse_json_body(raw, LIMIT)["a"] == "héllo 😀"
