"""Per-request routing facts, carried in a context variable by a small ASGI middleware.

The routing policy needs a few things only the HTTP layer sees: the `X-Cirrus-Route` and
`Prefer: respond-async` headers, `Idempotency-Key`, the body's size, and who is calling (job
ownership). The middleware reads them once into a RouteContext; the dispatcher reads it and
writes back where the request went. On the way out the middleware adds x-cirrus-route and
x-cirrus-route-reason to any response that lacks them (503s after a failed fallback
included) and, under Lambda, counts fallbacks as metrics.

Starlette runs sync endpoints and streaming iterators in worker threads with a copy of the
request's context, so the dispatcher sees the same RouteContext object in every thread.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cirrus_common.keys import bearer_token
from cirrus_common.observability import metrics

ROUTE_HEADER = "x-cirrus-route"
REASON_HEADER = "x-cirrus-route-reason"


@dataclass(frozen=True)
class RouteHints:
    forced: str | None = None  # X-Cirrus-Route, lower-cased
    prefer_async: bool = False  # Prefer: respond-async
    idempotency_key: str | None = None
    body_bytes: int = 0
    caller: str = ""  # a fingerprint of the caller's credential; owns the jobs it submits
    lambda_context: Any = None  # under Lambda (Mangum): bounds an idempotent submission


@dataclass
class RouteContext:
    hints: RouteHints = field(default_factory=RouteHints)
    route: str | None = None
    reason: str | None = None
    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, why)

    def record(self, route: str, reason: str) -> None:
        self.route, self.reason = route, reason


_current: ContextVar[RouteContext | None] = ContextVar("cirrus_route_context", default=None)


def current() -> RouteContext:
    """This request's context (outside a request: a fresh, empty one)."""
    ctx = _current.get()
    if ctx is None:
        ctx = RouteContext()
        _current.set(ctx)
    return ctx


def hints_from_headers(headers: Headers) -> RouteHints:
    prefer = {
        token.strip().lower()
        for part in headers.getlist("prefer")
        for token in part.replace(";", ",").split(",")
    }
    forced = (headers.get("x-cirrus-route") or "").strip().lower() or None
    length = headers.get("content-length", "")
    # Who owns a job: the key itself (hashed), however the header spells "Bearer".
    token = bearer_token(headers.get("authorization"))
    caller = hashlib.sha256(token.encode()).hexdigest()[:32] if token else ""
    return RouteHints(
        forced=forced,
        prefer_async="respond-async" in prefer,
        idempotency_key=headers.get("idempotency-key"),
        body_bytes=int(length) if length.isdigit() else 0,
        caller=caller,
    )


class RouteContextMiddleware:
    def __init__(self, app: ASGIApp, service: str = "cirrus-api") -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hints = hints_from_headers(Headers(scope=scope))
        if scope.get("aws.context") is not None:
            hints = replace(hints, lambda_context=scope["aws.context"])
        ctx = RouteContext(hints)
        token = _current.set(ctx)

        async def send_with_route(message: Message) -> None:
            if message["type"] == "http.response.start" and ctx.route is not None:
                headers = MutableHeaders(scope=message)
                if ROUTE_HEADER not in headers:
                    headers[ROUTE_HEADER] = ctx.route
                    headers[REASON_HEADER] = ctx.reason or ""
            await send(message)

        try:
            await self.app(scope, receive, send_with_route)
        finally:
            _current.reset(token)
            if scope.get("aws.event"):  # EMF metrics are flushed per Lambda invocation
                self._count(ctx)

    def _count(self, ctx: RouteContext) -> None:
        m = metrics(self.service)
        for source, target, why in ctx.fallbacks:
            m.add_metric(name="Fallbacks", unit=MetricUnit.Count, value=1)
            m.add_metric(name=f"Fallback_{source}_{why}", unit=MetricUnit.Count, value=1)
            if target == "none":
                m.add_metric(name="FallbackExhausted", unit=MetricUnit.Count, value=1)
