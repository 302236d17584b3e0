"""What the local AWS stand-ins share: a threaded HTTP server and AWS-style wire helpers."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("cirrus.local")


class AwsHandler(BaseHTTPRequestHandler):
    """Request handler with the few AWS wire forms both stand-ins answer with."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
        """An AWS JSON error: botocore reads the code from x-amzn-ErrorType."""
        payload = json.dumps({"message": message, "Message": message, **extra}).encode()
        self._send(status, payload, "application/json", {"x-amzn-ErrorType": code})

    def _start_event_stream(self, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    thread_name = "local-server"

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.thread_name, daemon=True)
        thread.start()
        return thread

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A client closing its keep-alive connection is routine, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s disconnected", client_address)
            return
        super().handle_error(request, client_address)
