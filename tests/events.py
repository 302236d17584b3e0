"""What each file in events/ should produce, by the naming convention in events/README.md."""

from __future__ import annotations


def expected_status(name: str) -> int:
    """`bad` in the name: an invalid request (400); `unknown`: a missing resource (404)."""
    if "bad" in name:
        return 400
    if "unknown" in name:
        return 404
    return 200
