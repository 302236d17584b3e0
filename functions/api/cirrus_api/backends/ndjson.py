"""Reassemble newline-delimited JSON from a byte stream whose chunks split lines anywhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                break
            line, buffer = buffer[:newline], buffer[newline + 1 :]
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
