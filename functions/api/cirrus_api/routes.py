"""HTTP routes: thin. Parse, authenticate, hand to the service, attach route headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from cirrus_api import protocol
from cirrus_api.body import parse_json_body
from cirrus_api.dispatch import Route
from cirrus_api.service import OpenAIService, Served, Streamed
from cirrus_common.errors import PayloadTooLargeError
from cirrus_common.observability import logger

log = logger("cirrus-api")

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": protocol.ErrorResponse, "description": text}
    for status, text in (
        (400, "Invalid request"),
        (401, "Missing or invalid API key"),
        (404, "Unknown model"),
        (413, "Request body too large"),
        (429, "Rate limited"),
        (502, "Backend failed"),
        (503, "Backend unavailable"),
    )
}


async def call_blocking(request: Request, fn: Callable[..., R], *args: Any) -> R:
    """Run blocking work (boto3 calls) the cheapest safe way for where the app runs.

    Under Lambda, Mangum gives each invocation its own event loop and exactly one request,
    so blocking it costs nothing, while a worker-thread hop costs a thread start per
    invocation (it dominated the per-request overhead). Under uvicorn the loop is shared by
    every request, so the work goes to the thread pool.
    """
    if "aws.event" in request.scope:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


async def get_service(request: Request) -> OpenAIService:
    service: OpenAIService = request.app.state.service
    return service


async def authenticate(request: Request) -> None:
    await call_blocking(request, request.app.state.authenticator, request)


async def rate_limit(request: Request) -> None:
    request.app.state.rate_limiter(request)  # in memory, never blocks


async def json_body(request: Request) -> Any:
    """Read the body under the byte cap (before any parsing) and parse it strictly."""
    limit: int = request.app.state.service.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"Request body is larger than the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"Request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return parse_json_body(b"".join(chunks), limit)


Service = Annotated[OpenAIService, Depends(get_service)]
Body = Annotated[Any, Depends(json_body)]


def _validate(model: type[T], body: Any, request: Request) -> T:
    parsed = model.model_validate(body)
    if parsed.model_extra:
        # Names only: values may hold prompt text.
        log.debug("ignored unknown fields", extra={"fields": sorted(parsed.model_extra)})
    request.state.model = getattr(parsed, "model", None)
    return parsed


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _route_headers(route: Route) -> dict[str, str]:
    return {"x-cirrus-route": route.backend, "x-cirrus-route-reason": route.reason}


def _respond(request: Request, outcome: Served | Streamed) -> JSONResponse | StreamingResponse:
    request.state.route = outcome.route
    headers = _route_headers(outcome.route)
    if isinstance(outcome, Streamed):
        request.state.tokens = outcome.tokens  # final once the stream has ended
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"
        return StreamingResponse(
            _stream_body(request, outcome.events), media_type="text/event-stream", headers=headers
        )
    request.state.tokens = (outcome.prompt_tokens, outcome.completion_tokens)
    headers.update(outcome.headers)  # e.g. Location for a 202 (async job)
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


async def _stream_body(request: Request, events: Iterator[str]) -> AsyncIterator[str]:
    if "aws.event" in request.scope:
        for event in events:  # Mangum buffers the body anyway; see call_blocking
            yield event
    else:
        async for event in iterate_in_threadpool(events):
            yield event


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    protocol.ChatCompletionRequest,
    protocol.CompletionRequest,
    protocol.EmbeddingRequest,
)

# Dependencies run in order: who is calling, then whether they may call now.
router = APIRouter(
    dependencies=[Depends(authenticate), Depends(rate_limit)], responses=ERROR_RESPONSES
)


@router.post(
    "/chat/completions",
    response_model=protocol.ChatCompletion,
    openapi_extra=_body_schema(protocol.ChatCompletionRequest),
    summary="Create a chat completion (stream=true answers text/event-stream)",
)
async def chat_completions(request: Request, body: Body, service: Service) -> Any:
    req = _validate(protocol.ChatCompletionRequest, body, request)
    return _respond(request, await call_blocking(request, service.chat, req, _request_id(request)))


@router.post(
    "/completions",
    response_model=protocol.Completion,
    openapi_extra=_body_schema(protocol.CompletionRequest),
    summary="Create a text completion",
)
async def completions(request: Request, body: Body, service: Service) -> Any:
    req = _validate(protocol.CompletionRequest, body, request)
    outcome = await call_blocking(request, service.completion, req, _request_id(request))
    return _respond(request, outcome)


@router.post(
    "/embeddings",
    response_model=protocol.EmbeddingList,
    openapi_extra=_body_schema(protocol.EmbeddingRequest),
    summary="Create embeddings",
)
async def embeddings(request: Request, body: Body, service: Service) -> Any:
    req = _validate(protocol.EmbeddingRequest, body, request)
    outcome = await call_blocking(request, service.embeddings, req, _request_id(request))
    return _respond(request, outcome)


@router.get("/models", response_model=protocol.ModelList, summary="List models")
async def list_models(service: Service) -> Any:
    return JSONResponse(service.list_models())


@router.get("/models/{model_id:path}", response_model=protocol.ModelCard, summary="Get a model")
async def get_model(model_id: str, service: Service) -> Any:
    return JSONResponse(service.get_model(model_id))


health_router = APIRouter()


@health_router.get(
    "/health", response_model=protocol.Health, summary="Liveness (no key, no backend call)"
)
async def health() -> Any:
    return JSONResponse({"status": "ok"})
