"""ApiFunction's entry point: the FastAPI app, and `handler`, the same app wrapped by Mangum.

`create_app` takes its dispatcher and key verifier by injection (tests, benchmarks, the local
stack); `handler` builds them from settings at init, outside the request path.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from mangum import Mangum
from pydantic.json_schema import models_json_schema

from cirrus_api.auth import Authenticator, KeyVerifier
from cirrus_api.backends.base import Backend
from cirrus_api.backends.circuit import CircuitBreaker, GuardedBackend
from cirrus_api.backends.model_function import ModelFunctionBackend
from cirrus_api.backends.sagemaker import SageMakerBackend
from cirrus_api.dispatch import Dispatcher
from cirrus_api.errors import install_error_handlers
from cirrus_api.jobs_routes import router as jobs_router
from cirrus_api.middleware import SERVICE, RequestContextMiddleware
from cirrus_api.ratelimit import RateLimiter
from cirrus_api.route_context import RouteContextMiddleware
from cirrus_api.routes import REQUEST_MODELS, health_router, router
from cirrus_api.service import OpenAIService
from cirrus_api.tokens import TokenCounter
from cirrus_common.errors import InternalError
from cirrus_common.observability import logger, metrics, tracer
from cirrus_common.payload import ModelRequest
from cirrus_common.registry import ModelSpec
from cirrus_common.routing import Deployment
from cirrus_common.settings import Settings, get_settings


def create_app(
    settings: Settings, dispatcher: Dispatcher, verifier: KeyVerifier | None = None
) -> FastAPI:
    app = FastAPI(
        title="Cirrus",
        version="1",
        description="OpenAI-compatible LLM API on AWS Lambda and SageMaker.",
        docs_url="/docs",
        redoc_url=None,
        # A 307 to the slash-less path would drop API Gateway's stage prefix: answer 404.
        redirect_slashes=False,
    )
    app.state.service = OpenAIService(settings, dispatcher)
    app.state.authenticator = Authenticator(settings.auth_enabled, verifier)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
    app.include_router(health_router)
    app.include_router(router, prefix="/v1")
    # The same routes without /v1, as common gateways serve them; documented once.
    app.include_router(router, include_in_schema=False)
    app.include_router(jobs_router, prefix="/v1")  # GET /v1/jobs/{id} (async jobs)
    app.include_router(jobs_router, include_in_schema=False)
    install_error_handlers(app)
    app.add_middleware(RouteContextMiddleware)  # routing headers in, x-cirrus-route out
    app.add_middleware(RequestContextMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies, which routes parse themselves (strict JSON)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        _, defs = models_json_schema(
            [(m, "validation") for m in REQUEST_MODELS],
            ref_template="#/components/schemas/{model}",
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        app.openapi_schema = schema
    return app.openapi_schema


def build_dispatcher(settings: Settings) -> Dispatcher:
    """Backends behind circuit breakers, the token counter and async jobs, from settings."""
    budget = max(1.0, settings.api_gateway_budget_s - 1.0)
    tokens = TokenCounter(settings.model_cache_dir)
    backends: dict[str, Backend] = {
        "lambda": GuardedBackend(
            ModelFunctionBackend(settings.model_function_name, read_timeout_s=budget),
            CircuitBreaker("lambda"),
        )
    }
    sagemaker = SageMakerBackend(
        settings.sagemaker_endpoint_name,
        async_endpoint_name=settings.sagemaker_async_endpoint_name,
        prompt_tokens=lambda r: tokens.count(settings.models.get(r.model) or _no_spec(r), r),
    )
    if settings.sagemaker_endpoint_name:
        backends["sagemaker"] = GuardedBackend(sagemaker, CircuitBreaker("sagemaker"))
    jobs = None
    if settings.sagemaker_async_endpoint_name and settings.jobs_bucket:
        from cirrus_api.jobs import JobService

        jobs = JobService(
            bucket=settings.jobs_bucket,
            idempotency_table=settings.idempotency_table,
            submitter=sagemaker,
        )
    deployment = Deployment(
        has_lambda=True,
        has_sagemaker="sagemaker" in backends,
        has_async=jobs is not None,
        budget_s=budget,
    )
    return Dispatcher(backends, deployment=deployment, tokens=tokens, jobs=jobs)


def _no_spec(request: ModelRequest) -> ModelSpec:
    raise InternalError(f"model {request.model!r} vanished from the registry")


def build_verifier(settings: Settings) -> KeyVerifier | None:
    if not settings.auth_enabled:
        return None
    from cirrus_common.keys import KeyStore

    return KeyStore(settings.keys_table)


@cache
def _mangum() -> Mangum:
    settings = get_settings()
    app = create_app(settings, build_dispatcher(settings), build_verifier(settings))
    return Mangum(app, lifespan="off")


_log = logger(SERVICE)
_metrics = metrics(SERVICE)
_tracer = tracer(SERVICE)


@_log.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@_tracer.capture_lambda_handler(capture_response=False)
@_metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    adapter = _mangum()
    jobs = adapter.app.state.service.dispatcher.jobs  # type: ignore[attr-defined]
    if jobs is not None:
        jobs.register_lambda_context(context)
    result: dict[str, Any] = adapter(event, context)  # type: ignore[arg-type]
    return result


# Build the app during Lambda's init phase (free CPU burst, outside the first request's
# latency) but not when merely imported by tools and tests outside Lambda.
if __import__("os").environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    _mangum()
