"""A local stand-in for the Lambda Invoke API (what `sam local start-lambda` offers).

Speaks the wire protocol boto3's Lambda client uses, so ApiFunction's production code runs
against it with only AWS_ENDPOINT_URL_LAMBDA changed:

- POST /2015-03-31/functions/{name}/invocations: RequestResponse (200, payload; a raised
  exception answers X-Amz-Function-Error: Unhandled as Lambda does), Event (202) and DryRun.
- POST /2021-11-15/functions/{name}/response-streaming-invocations: the answer framed as an
  event stream of PayloadChunk events and a final InvokeComplete.
- Each function has a concurrency limit, like reserved concurrency: beyond it the call gets
  429 TooManyRequestsException, so backpressure can be exercised on one machine.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cirrus_local import eventstream
from cirrus_local.functions import LocalLambdaContext, load
from cirrus_local.http_base import AwsHandler, LocalServer

log = logging.getLogger("cirrus.local.lambda")

# Lambda's limit on a synchronous request and response payload (6 MB), enforced here too so
# that what passes locally fits in AWS.
SYNC_PAYLOAD_LIMIT = 6_291_456

_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_STREAM = re.compile(r"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")


@dataclass
class LocalFunction:
    name: str
    handler: str
    stream_handler: str | None = None
    concurrency: int = 4
    timeout_s: float = 60.0
    _slots: threading.BoundedSemaphore = field(init=False)
    _loaded: dict[str, Callable[..., Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.concurrency)

    def callable(self, path: str) -> Callable[..., Any]:
        if path not in self._loaded:
            self._loaded[path] = load(path)
        return self._loaded[path]

    def context(self) -> LocalLambdaContext:
        return LocalLambdaContext(function_name=self.name, timeout_s=self.timeout_s)


def _function_name(raw: str) -> str:
    """Accept a name, a partial or full ARN, with or without a qualifier."""
    name = unquote(raw)
    if name.startswith("arn:"):
        parts = name.split(":")
        name = parts[6] if len(parts) > 6 else name
    return name.split(":")[0]


class _Handler(AwsHandler):
    server: LambdaServer

    def do_POST(self) -> None:
        body = self.read_body()
        if match := _INVOKE.match(self.path.split("?")[0]):
            self._invoke(_function_name(match.group(1)), body)
        elif match := _STREAM.match(self.path.split("?")[0]):
            self._invoke_stream(_function_name(match.group(1)), body)
        else:
            self._error(404, "UnknownOperationException", f"Unknown operation {self.path}")

    # ---- helpers --------------------------------------------------------------------------

    def _prepare(self, name: str, body: bytes) -> tuple[LocalFunction, Any] | None:
        function = self.server.functions.get(name)
        if function is None:
            self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
            return None
        if len(body) > SYNC_PAYLOAD_LIMIT:
            self._error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction "
                "operation",
            )
            return None
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            self._error(400, "InvalidRequestContentException", "Could not parse request body")
            return None
        if not function._slots.acquire(blocking=False):
            self._error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded. (ReservedFunctionConcurrentInvocationLimitExceeded)",
            )
            return None
        return function, event

    def _invoke(self, name: str, body: bytes) -> None:
        invocation = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation == "DryRun":
            self._send(204, b"", "application/json")
            return
        prepared = self._prepare(name, body)
        if prepared is None:
            return
        function, event = prepared
        if invocation == "Event":
            threading.Thread(target=self._run_async, args=(function, event), daemon=True).start()
            self._send(202, b"", "application/json")
            return
        try:
            status_error: str | None = None
            try:
                result = function.callable(function.handler)(event, function.context())
                payload = json.dumps(result).encode()
                if len(payload) > SYNC_PAYLOAD_LIMIT:  # as Lambda refuses to return it
                    status_error = "Unhandled"
                    payload = json.dumps(
                        {
                            "errorMessage": "Response payload size exceeded maximum allowed "
                            f"payload size ({SYNC_PAYLOAD_LIMIT} bytes).",
                            "errorType": "Function.ResponseSizeTooLarge",
                        }
                    ).encode()
            except Exception as exc:  # Lambda reports it as an Unhandled function error
                log.exception("function %s raised", name)
                status_error = "Unhandled"
                payload = json.dumps(
                    {"errorMessage": str(exc), "errorType": type(exc).__name__}
                ).encode()
        finally:
            function._slots.release()
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if status_error:
            headers["X-Amz-Function-Error"] = status_error
        self._send(200, payload, "application/json", headers)

    def _run_async(self, function: LocalFunction, event: Any) -> None:
        try:
            function.callable(function.handler)(event, function.context())
        except Exception:
            log.exception("async invocation of %s failed", function.name)
        finally:
            function._slots.release()

    def _invoke_stream(self, name: str, body: bytes) -> None:
        prepared = self._prepare(name, body)
        if prepared is None:
            return
        function, event = prepared
        try:
            if function.stream_handler:
                chunks: Iterator[bytes] = function.callable(function.stream_handler)(event)
            else:  # a function that does not stream answers in one chunk, as in AWS
                result = function.callable(function.handler)(event, function.context())
                chunks = iter([json.dumps(result).encode()])
            self._start_event_stream({"X-Amz-Executed-Version": "$LATEST"})
            error: dict[str, str] = {}
            try:
                for chunk in chunks:
                    if chunk:
                        self._chunk(eventstream.event("PayloadChunk", chunk))
            except ConnectionError:
                raise  # the caller hung up: nothing left to tell it
            except Exception as exc:
                log.exception("stream of %s failed", name)
                error = {"ErrorCode": "Unhandled", "ErrorDetails": type(exc).__name__}
            finally:
                # Stop generating for a caller that is gone (closes the handler's generator).
                getattr(chunks, "close", lambda: None)()
            done = json.dumps({**error, "LogResult": ""}).encode()
            self._chunk(eventstream.event("InvokeComplete", done, "application/json"))
            self._end_chunks()
        except ConnectionError:
            log.info("client went away during a stream of %s", name)
        finally:
            function._slots.release()


class LambdaServer(LocalServer):
    thread_name = "local-lambda"

    def __init__(self, address: tuple[str, int], functions: Mapping[str, LocalFunction]):
        self.functions = dict(functions)
        super().__init__(address, _Handler)
