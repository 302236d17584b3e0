"""Choose a backend for a model request and run it there, falling back when it cannot.

The routing policy itself (which backend, and why) is a pure function in the layer
(cirrus_common.routing); this module feeds it the request's facts (prompt tokens counted
with the model's tokenizer, headers from the RouteContext) and applies its decision to live
backends:

- a backend that answers BackendUnavailableError (throttled, cold, failing, timed out, or
  its circuit is open) generated nothing, so the request runs on the decision's fallback
  when it has one; the route reason then says so ("fallback_from_sagemaker_throttled").
  Otherwise the 503 + Retry-After goes to the client.
- streams are primed here: the first item is pulled before returning, so an unavailable
  backend is detected, and fallen back from, before the 200 goes out.
- BackendFailedError (the backend accepted and then broke) is never retried elsewhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cirrus_api import route_context
from cirrus_api.backends.base import (
    Backend,
    BackendFailedError,
    BackendUnavailableError,
    StreamItem,
)
from cirrus_common.errors import InternalError, InvalidRequestError
from cirrus_common.observability import logger
from cirrus_common.payload import ModelRequest, ModelResponse
from cirrus_common.registry import ModelSpec
from cirrus_common.routing import (
    Decision,
    Deployment,
    RouteName,
    RoutingRequest,
    allowed_routes,
    decide,
)

if TYPE_CHECKING:
    from cirrus_api.jobs import JobService
    from cirrus_api.tokens import TokenCounter

log = logger("cirrus-api")


def _check_context(spec: ModelSpec, request: ModelRequest, floor: int) -> None:
    """Refuse here what no backend could run, rather than pay a model call to hear it."""
    ctx, limit = spec.context_length, request.params.max_tokens
    prompt_param = "messages" if request.op == "chat" else "prompt"
    if floor >= ctx:
        raise InvalidRequestError(
            f"This model's maximum context length is {ctx} tokens, but the prompt alone is at "
            f"least {floor} tokens. Please shorten the prompt.",
            param=prompt_param,
            code="context_length_exceeded",
        )
    if limit is not None and floor + limit > ctx:
        raise InvalidRequestError(
            f"This model's maximum context length is {ctx} tokens. However, you requested at "
            f"least {floor + limit} tokens ({floor}+ in the prompt, {limit} for the "
            f"completion). Please reduce the prompt or max_tokens.",
            param="max_tokens",
            code="context_length_exceeded",
        )


@dataclass(frozen=True)
class Route:
    """Where a request ran, and why: sent back as x-cirrus-route / x-cirrus-route-reason."""

    backend: str
    reason: str


@dataclass(frozen=True)
class Accepted:
    """An asynchronous job was queued: the job's view, for a 202."""

    job: dict[str, Any]
    route: Route

    @property
    def location(self) -> str:
        """Where the job's status is read (jobs_routes.py serves it)."""
        return f"/v1/jobs/{self.job['id']}"


class Dispatcher:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        *,
        deployment: Deployment | None = None,
        tokens: TokenCounter | None = None,
        jobs: JobService | None = None,
    ) -> None:
        self._backends = dict(backends)
        self.jobs = jobs
        self.tokens = tokens
        self.deployment = deployment or Deployment(
            has_lambda="lambda" in self._backends,
            has_sagemaker="sagemaker" in self._backends,
            has_async=jobs is not None,
        )

    # ---- the decision ---------------------------------------------------------------------

    def facts(self, spec: ModelSpec, request: ModelRequest) -> RoutingRequest:
        hints = route_context.current().hints
        # Counting costs ~1 ms for a long prompt; skip it when there is nothing to choose.
        counted = (
            self.tokens is not None and len(allowed_routes(spec, request.op, self.deployment)) > 1
        )
        prompt_tokens, floor = (
            self.tokens.measure(spec, request) if self.tokens and counted else (0, None)
        )
        if floor is not None:
            _check_context(spec, request, floor)
        text_bytes = sum(len(m.content) for m in request.messages) + sum(
            len(p) for p in request.prompts
        )
        return RoutingRequest(
            op=request.op,
            prompt_tokens=prompt_tokens,
            # Unbounded chat may run to the end of the context: estimate the worst case.
            max_tokens=request.params.max_tokens or max(1, spec.context_length - prompt_tokens),
            n=request.params.n * max(1, len(request.prompts)),
            stream=request.stream,
            body_bytes=max(hints.body_bytes, text_bytes),
            forced=hints.forced,
            prefer_async=hints.prefer_async,
        )

    def decide(self, spec: ModelSpec, request: ModelRequest) -> Decision:
        decision = decide(spec, self.facts(spec, request), self.deployment)
        route_context.current().record(decision.route, decision.reason)
        return decision

    # ---- running --------------------------------------------------------------------------

    def run(
        self, spec: ModelSpec, request: ModelRequest, decision: Decision | None = None
    ) -> tuple[ModelResponse, Route]:
        decision = decision or self.decide(spec, request)
        primary = self._sync_route(decision)
        try:
            return self._backend(primary).run(request), Route(primary, decision.reason)
        except BackendUnavailableError as exc:
            fallback = self._fallback(decision, exc)
        try:
            return self._backend(fallback.backend).run(request), fallback
        except BackendUnavailableError as exc:
            self._exhausted(fallback, exc)
            raise

    def stream(
        self, spec: ModelSpec, request: ModelRequest, decision: Decision | None = None
    ) -> tuple[Iterator[StreamItem], Route]:
        decision = decision or self.decide(spec, request)
        primary = self._sync_route(decision)
        try:
            return self._primed(primary, request), Route(primary, decision.reason)
        except BackendUnavailableError as exc:
            fallback = self._fallback(decision, exc)
        try:
            return self._primed(fallback.backend, request), fallback
        except BackendUnavailableError as exc:
            self._exhausted(fallback, exc)
            raise

    def submit(self, spec: ModelSpec, request: ModelRequest, decision: Decision) -> Accepted:
        """Queue the request as an asynchronous job (decision.route == "async")."""
        if self.jobs is None or decision.route != "async":
            raise InternalError("Asynchronous jobs are not configured.")
        job = self.jobs.submit(spec, request, route_context.current().hints)
        return Accepted(job, Route("async", decision.reason))

    # ---- helpers --------------------------------------------------------------------------

    def _backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:  # the deployment said it exists: a wiring bug
            raise InternalError(f"Backend {name!r} is not configured.")
        return backend

    @staticmethod
    def _sync_route(decision: Decision) -> RouteName:
        if decision.route == "async":
            raise InternalError("An asynchronous decision reached a synchronous call.")
        return decision.route

    def _primed(self, name: str, request: ModelRequest) -> Iterator[StreamItem]:
        items = iter(self._backend(name).stream(request))
        try:
            first = next(items)
        except StopIteration:
            raise BackendFailedError(name, "stream ended before any item") from None
        return itertools.chain([first], items)

    def _fallback(self, decision: Decision, exc: BackendUnavailableError) -> Route:
        ctx = route_context.current()
        target = decision.fallback
        if target is None or target == "async" or target not in self._backends:
            self._exhausted(Route(decision.route, decision.reason), exc)
            raise exc
        route = Route(target, f"fallback_from_{exc.backend}_{exc.reason}")
        ctx.fallbacks.append((exc.backend, target, exc.reason))
        ctx.record(route.backend, route.reason)
        log.info("falling back", extra={"backend": exc.backend, "why": exc.reason, "to": target})
        return route

    @staticmethod
    def _exhausted(route: Route, exc: BackendUnavailableError) -> None:
        """Nowhere left to run: the client gets the 503 + Retry-After."""
        ctx = route_context.current()
        ctx.fallbacks.append((exc.backend, "none", exc.reason))
        ctx.record(route.backend, f"unavailable_{exc.reason}")
        log.warning(
            "backend unavailable, no fallback left",
            extra={"backend": exc.backend, "why": exc.reason},
        )
