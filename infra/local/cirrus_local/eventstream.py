"""Encode AWS event-stream messages (application/vnd.amazon.eventstream).

Lambda's InvokeWithResponseStream and SageMaker's InvokeEndpointWithResponseStream frame
their streamed bodies this way; botocore decodes them (botocore.eventstream). Layout of one
message: total length, headers length, CRC32 of those 8 bytes, headers, payload, CRC32 of all
that precedes. Headers here are all strings (type 7).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

_STRING = 7


def _headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    return encode_message(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"},
        payload,
    )


def exception(error_type: str, payload: bytes) -> bytes:
    return encode_message(
        {
            ":exception-type": error_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )
