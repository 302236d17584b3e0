"""Per-request context as raw ASGI middleware (no BaseHTTPMiddleware: it buffers streams).

Gives every request an id (API Gateway's request id under Lambda, a fresh one elsewhere),
sends it back as x-request-id on every response, errors included, logs one access line
without prompt text, records metrics, and turns anything unhandled into an OpenAI-shaped 500
rather than a stack trace.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cirrus_common.errors import InternalError
from cirrus_common.observability import logger, metrics

SERVICE = "cirrus-api"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logger(SERVICE)
        self.metrics = metrics(SERVICE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        event: dict[str, Any] = scope.get("aws.event") or {}
        request_id = (event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        if not event:
            # Under Lambda the handler's decorator sets the correlation id for the one request
            # in flight; a server interleaves requests, so each keeps its own (a contextvar).
            self.log.thread_safe_append_keys(correlation_id=request_id)
        started = time.perf_counter()
        status = 0

        # HEAD is GET without the body (RFC 9110), for every GET route: answered here once
        # rather than declared per route (which would also duplicate OpenAPI operations).
        head = scope.get("method") == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("x-request-id", request_id)
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            self.log.exception("unhandled error")
            if status == 0:
                status = 500
                error = InternalError("The server had an error processing the request.")
                body = json.dumps(error.body()).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            self._record(scope, state, status, time.perf_counter() - started, in_lambda=bool(event))
            if not event:
                self.log.thread_safe_remove_keys(["correlation_id"])

    def _record(
        self, scope: Scope, state: dict[str, Any], status: int, seconds: float, in_lambda: bool
    ) -> None:
        route = state.get("route")
        tokens = state.get("tokens", (0, 0))
        latency_ms = round(seconds * 1000, 2)
        self.log.info(
            "request",
            extra={
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "latency_ms": latency_ms,
                "model": state.get("model"),
                "route": getattr(route, "backend", None),
                "route_reason": getattr(route, "reason", None),
                "prompt_tokens": tokens[0],
                "completion_tokens": tokens[1],
            },
        )
        if not in_lambda:
            return  # EMF metrics are flushed per invocation by the Lambda handler
        m = self.metrics
        m.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        m.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if status >= 500:
            m.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
        elif status >= 400:
            m.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=1)
        if route is not None:
            m.add_metric(name=f"Route_{route.backend}", unit=MetricUnit.Count, value=1)
        if tokens[0] or tokens[1]:
            m.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=tokens[0])
            m.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=tokens[1])
