"""Run one ModelRequest: look the model up, load it, run the right engine, shape the result.

`iter_response` is the single code path: it yields StreamDelta items while text is produced and
always ends with exactly one ModelResponse (success or structured failure). The Lambda handler
keeps only that last item; the streaming entry point serialises every item.

This module imports no torch at module scope; loader/engine import it when a model is needed.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from cirrus_common.payload import (
    Choice,
    EmbeddingResult,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)
from cirrus_common.registry import ModelSpec
from cirrus_common.settings import Settings, get_settings
from cirrus_model.errors import InvalidRequest, ModelFunctionError, ModelNotFound

logger = Logger(service="cirrus-model", child=True)

Item = StreamDelta | ModelResponse

_OP_KIND = {"chat": "generation", "completion": "generation", "embeddings": "embeddings"}


def parse_request(event: Any) -> ModelRequest:
    """Validate an invoke payload; raises InvalidRequest with pydantic's first complaint."""
    if not isinstance(event, Mapping):
        raise InvalidRequest("the invoke payload must be a JSON object")
    try:
        return ModelRequest.model_validate(dict(event))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidRequest(f"invalid payload: {where}: {first.get('msg')}", param=where) from None


def iter_response(request: ModelRequest, settings: Settings | None = None) -> Iterator[Item]:
    """Deltas as they are produced, then the one final ModelResponse."""
    started = time.perf_counter()
    try:
        settings = settings or get_settings()
        spec = _lookup(request, settings)
        if spec.kind == "embeddings":
            response = _embeddings(request, spec, settings)
        else:
            response = yield from _generate(request, spec, settings)
    except Exception as exc:  # every failure leaves as a structured error
        response = to_failure(exc, request)
    _log_done(request, response, time.perf_counter() - started, settings)
    yield response


def respond(request: ModelRequest, settings: Settings | None = None) -> ModelResponse:
    """The final ModelResponse only (non-streaming callers)."""
    last: Item | None = None
    for last in iter_response(request, settings):  # noqa: B007 - only the last item matters
        pass
    assert isinstance(last, ModelResponse)
    return last


def to_failure(exc: BaseException, request: ModelRequest | None = None) -> ModelResponse:
    """Map any exception to a ModelResponse failure; internals only reach the log."""
    extra = {"request_id": request.request_id if request else None}
    if isinstance(exc, ModelFunctionError):
        if exc.code in ("model_load_failed", "internal_error"):
            logger.error("request failed", extra={**extra, "code": exc.code}, exc_info=exc)
        return ModelResponse.failure(exc.code, exc.message, exc.param)
    if _is_oom(exc):
        logger.error("out of memory", extra=extra, exc_info=exc)
        return ModelResponse.failure("out_of_memory", "The model ran out of memory.")
    logger.error("unexpected error", extra=extra, exc_info=exc)
    return ModelResponse.failure("internal_error", "The model backend hit an internal error.")


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _lookup(request: ModelRequest, settings: Settings) -> ModelSpec:
    spec = settings.models.get(request.model)
    if spec is None:
        raise ModelNotFound(f"The model {request.model!r} does not exist.", param="model")
    wanted = _OP_KIND[request.op]
    if spec.kind != wanted:
        raise ModelNotFound(
            f"The model {request.model!r} is a {spec.kind} model and does not support "
            f"{request.op} requests.",
            param="model",
        )
    return spec


def _generate(
    request: ModelRequest, spec: ModelSpec, settings: Settings
) -> Generator[StreamDelta, None, ModelResponse]:
    from cirrus_model.engine import GenerationEngine
    from cirrus_model.loader import get_model

    if request.op == "chat" and not request.messages:
        raise InvalidRequest("messages must not be empty", param="messages")
    if request.op == "completion" and not request.prompts:
        raise InvalidRequest("prompt must not be empty", param="prompt")
    loaded = get_model(spec, settings)
    engine = GenerationEngine(loaded.model, loaded.tokenizer, loaded.context_length)
    params = request.params
    if request.op == "chat":
        prompts = [engine.encode_chat([m.model_dump() for m in request.messages])]
    else:
        prompts = [engine.encode_prompt(p) for p in request.prompts]
    # Check every prompt before generating any, so a bad second prompt wastes no compute.
    prompt_param = "messages" if request.op == "chat" else "prompt"
    runs = [
        engine.start(ids, params, first_index=i * params.n, prompt_param=prompt_param)
        for i, ids in enumerate(prompts)
    ]
    choices: list[Choice] = []
    for run in runs:
        for index, text in run:
            yield StreamDelta(index=index, text=text)
        choices.extend(
            Choice(index=c.index, text=c.text, finish_reason=c.finish_reason) for c in run.choices
        )
    result = GenerationResult(
        choices=tuple(choices),
        prompt_tokens=sum(r.prompt_tokens for r in runs),
        completion_tokens=sum(r.completion_tokens for r in runs),
    )
    return ModelResponse(ok=True, result=result)


def _embeddings(request: ModelRequest, spec: ModelSpec, settings: Settings) -> ModelResponse:
    from cirrus_model.embeddings import EmbeddingEngine
    from cirrus_model.loader import get_model

    loaded = get_model(spec, settings)
    engine = EmbeddingEngine(loaded.model, loaded.tokenizer, loaded.context_length)
    out = engine.embed(request.inputs, dimensions=request.dimensions)
    result = EmbeddingResult.from_vectors(out.vectors, out.prompt_tokens)
    return ModelResponse(ok=True, result=result)


def _log_done(
    request: ModelRequest, response: ModelResponse, seconds: float, settings: Settings | None
) -> None:
    fields: dict[str, Any] = {
        "request_id": request.request_id,
        "op": request.op,
        "model": request.model,
        "ok": response.ok,
        "duration_ms": round(seconds * 1000, 1),
    }
    if response.error is not None:
        fields["error_code"] = response.error.code
    result = response.result
    if isinstance(result, GenerationResult):
        fields |= {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "choices": len(result.choices),
        }
        if result.completion_tokens and seconds > 0:
            fields["tokens_per_s"] = round(result.completion_tokens / seconds, 1)
    elif isinstance(result, EmbeddingResult):
        fields |= {"prompt_tokens": result.prompt_tokens, "inputs": len(result.vectors_b64)}
    if settings is not None and settings.log_prompts:
        fields["messages"] = [m.model_dump() for m in request.messages]
        fields["prompts"] = list(request.prompts)
    logger.info("request done", extra=fields)
