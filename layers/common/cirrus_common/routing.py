"""The routing policy: which backend serves a request, and why. Pure: no I/O, no clock.

ApiFunction counts the prompt's tokens, then asks `decide` where the request goes:

- lambda: ModelFunction, for light requests (the common case, cheapest, scales to zero);
- sagemaker: the real-time GPU endpoint, for heavy requests and SageMaker-only models;
- async: SageMaker asynchronous inference (202 + job id), when the caller prefers it or the
  work would outlast a synchronous call even on the GPU.

Heavy means ModelFunction would likely not finish inside the API Gateway budget (prompt
tokens / prefill rate + generated tokens / decode rate, rates per model in the registry, with
a margin: HEAVY_FRACTION of the budget, as rates are estimates), or the payload is close to
Lambda's 6 MB invoke limit. The decision also names the fallback: the backend to try when the
chosen one is throttled, cold or failing, or None when the request fits nowhere else (then the
client gets 503 + Retry-After). ModelFunction is a fallback only for requests that fit its
limits: the estimate within the whole budget, the payload under the limit. So a request in the
margin (80-100% of the budget) prefers the GPU but can still run on Lambda, and one beyond
the budget is refused with 503 rather than left to time out.

The reason is a short token sent back as x-cirrus-route-reason and counted in metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cirrus_common.errors import InvalidRequestError, ServiceUnavailableError
from cirrus_common.registry import ModelSpec

RouteName = Literal["lambda", "sagemaker", "async"]
Op = Literal["chat", "completion", "embeddings"]
ROUTES: tuple[RouteName, ...] = ("lambda", "sagemaker", "async")

# Lambda's synchronous invoke payload limit (request and response), and how close to it a
# request may come before it is sent elsewhere: the ModelRequest wraps the body, and the
# answer must fit on the way back too.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
LAMBDA_PAYLOAD_HEADROOM = 0.8
# Prefer the GPU once ModelFunction's estimate passes this share of the budget.
HEAVY_FRACTION = 0.8
# SageMaker's messages contract (TGI Messages API, LMI) serves chat; completions and
# embeddings stay on ModelFunction.
SAGEMAKER_OPS: frozenset[Op] = frozenset({"chat"})

Reason = Literal[
    "forced",  # X-Cirrus-Route
    "prefer_async",  # Prefer: respond-async
    "light",  # fits ModelFunction comfortably
    "lambda_only",  # nothing else serves this model/operation here
    "heavy_no_gpu",  # heavy, but no GPU endpoint is deployed: ModelFunction tries anyway
    "sagemaker_only",  # the model is served on SageMaker only
    "heavy_time",  # ModelFunction would likely exceed the API Gateway budget
    "heavy_payload",  # close to Lambda's 6 MB payload limit
    "long_job",  # would outlast a synchronous call even on the GPU
]


@dataclass(frozen=True)
class RoutingRequest:
    """The facts about one request that routing looks at."""

    op: Op
    prompt_tokens: int
    max_tokens: int
    n: int = 1  # completions to generate (n x prompts for /v1/completions)
    stream: bool = False
    body_bytes: int = 0
    forced: str | None = None  # X-Cirrus-Route, lower-cased
    prefer_async: bool = False


@dataclass(frozen=True)
class Deployment:
    """What this stage has: set from settings once, not per request."""

    has_lambda: bool = True
    has_sagemaker: bool = False  # a real-time endpoint name is configured
    has_async: bool = False  # an async endpoint, a jobs bucket and an idempotency table
    budget_s: float = 29.0  # API Gateway's integration timeout, minus headroom


@dataclass(frozen=True)
class Decision:
    route: RouteName
    reason: Reason
    fallback: RouteName | None
    lambda_s: float  # estimated ModelFunction time
    sagemaker_s: float  # estimated GPU time


class RouteNotAllowedError(InvalidRequestError):
    """X-Cirrus-Route names a route this model or deployment does not offer."""

    default_code = "route_not_allowed"


def lambda_seconds(spec: ModelSpec, req: RoutingRequest) -> float:
    n = max(1, req.n)
    return req.prompt_tokens / spec.prefill_tps + req.max_tokens * n / spec.decode_tps


def sagemaker_seconds(spec: ModelSpec, req: RoutingRequest) -> float:
    n = max(1, req.n)
    return (
        req.prompt_tokens / spec.sagemaker_prefill_tps
        + req.max_tokens * n / spec.sagemaker_decode_tps
    )


def allowed_routes(spec: ModelSpec, op: Op, deployment: Deployment) -> tuple[RouteName, ...]:
    """Routes that can serve this model and operation in this deployment."""
    routes: list[RouteName] = []
    if "lambda" in spec.backends and deployment.has_lambda:
        routes.append("lambda")
    if "sagemaker" in spec.backends and op in SAGEMAKER_OPS:
        if deployment.has_sagemaker:
            routes.append("sagemaker")
        if deployment.has_async:
            routes.append("async")
    return tuple(routes)


def fits_lambda(spec: ModelSpec, req: RoutingRequest, deployment: Deployment) -> bool:
    """Within ModelFunction's limits: where it may run as a fallback."""
    return not _payload_heavy(req) and lambda_seconds(spec, req) <= deployment.budget_s


def light_for_lambda(spec: ModelSpec, req: RoutingRequest, deployment: Deployment) -> bool:
    """Comfortably within them: where it runs first."""
    return (
        not _payload_heavy(req)
        and lambda_seconds(spec, req) <= deployment.budget_s * HEAVY_FRACTION
    )


def _payload_heavy(req: RoutingRequest) -> bool:
    return req.body_bytes >= LAMBDA_PAYLOAD_LIMIT * LAMBDA_PAYLOAD_HEADROOM


def decide(spec: ModelSpec, req: RoutingRequest, deployment: Deployment) -> Decision:
    """Where the request runs, why, and where it may fall back to."""
    allowed = allowed_routes(spec, req.op, deployment)
    lam_s = lambda_seconds(spec, req)
    gpu_s = sagemaker_seconds(spec, req)
    light = light_for_lambda(spec, req, deployment)
    fits = fits_lambda(spec, req, deployment)

    def make(route: RouteName, reason: Reason, fallback: bool = True) -> Decision:
        return Decision(
            route=route,
            reason=reason,
            fallback=_fallback(route, allowed, fits) if fallback else None,
            lambda_s=lam_s,
            sagemaker_s=gpu_s,
        )

    if not allowed:
        raise ServiceUnavailableError(
            f"No backend serving model {spec.id!r} for this operation is configured.",
            code="no_backend",
            retry_after=30,
        )
    if req.forced:
        if req.forced not in allowed or (req.forced == "async" and req.stream):
            offered = ", ".join(r for r in allowed if not (r == "async" and req.stream))
            raise RouteNotAllowedError(
                f"X-Cirrus-Route {req.forced!r} is not available for model {spec.id!r} "
                f"here; allowed: {offered}.",
                param="X-Cirrus-Route",
            )
        return make(req.forced, "forced", fallback=False)
    if req.prefer_async and "async" in allowed and not req.stream:
        return make("async", "prefer_async", fallback=False)

    if "lambda" not in allowed:
        if "sagemaker" in allowed:
            if not req.stream and "async" in allowed and gpu_s > deployment.budget_s:
                return make("async", "long_job", fallback=False)
            return make("sagemaker", "sagemaker_only")
        if req.stream:  # only the async endpoint serves this model here
            raise InvalidRequestError(
                f"Model {spec.id!r} runs asynchronously here; stream is not available.",
                param="stream",
                code="stream_not_supported",
            )
        return make("async", "sagemaker_only", fallback=False)
    if light:
        return make("lambda", "light" if len(allowed) > 1 else "lambda_only")
    # Heavy for ModelFunction.
    reason: Reason = "heavy_payload" if _payload_heavy(req) else "heavy_time"
    long_job = gpu_s > deployment.budget_s or "sagemaker" not in allowed
    if not req.stream and "async" in allowed and long_job:
        return make("async", "long_job", fallback=False)
    if "sagemaker" in allowed:
        return make("sagemaker", reason)
    return make("lambda", "heavy_no_gpu")


def _fallback(route: RouteName, allowed: tuple[RouteName, ...], fits: bool) -> RouteName | None:
    if route == "sagemaker" and "lambda" in allowed and fits:
        return "lambda"
    if route == "lambda" and "sagemaker" in allowed:
        return "sagemaker"
    return None
