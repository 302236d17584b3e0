"""The serving layer: OpenAI requests in, model requests out, OpenAI responses back.

Routers stay thin and the dispatcher is injected, so this module is tested with a fake
backend and the same code serves Lambda, the local stack and the benchmarks.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cirrus_api.backends.base import StreamItem
from cirrus_api.dispatch import Dispatcher, Route
from cirrus_api.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    _Sampling,
)
from cirrus_common.errors import (
    BackendError,
    CirrusError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    from_model_error,
)
from cirrus_common.observability import logger
from cirrus_common.openai_shapes import chat_completion, text_completion, usage
from cirrus_common.payload import (
    ChatMessage,
    EmbeddingResult,
    GenerationParams,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)
from cirrus_common.registry import Kind, ModelSpec
from cirrus_common.settings import Settings

COMPLETIONS_DEFAULT_MAX_TOKENS = 16


@dataclass(frozen=True)
class Served:
    """A response body and the facts the app reports about it (headers, metrics)."""

    body: dict[str, Any]
    route: Route
    prompt_tokens: int
    completion_tokens: int
    # 202 + Location for an accepted asynchronous job (routing: async)
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Streamed:
    events: Iterator[str]
    route: Route
    # [prompt, completion] tokens, filled in when the stream's final result arrives (for the
    # access log and metrics, which are written after the last byte).
    tokens: list[int] = field(default_factory=lambda: [0, 0])


class OpenAIService:
    def __init__(self, settings: Settings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher

    # ---- models ---------------------------------------------------------------------------

    def list_models(self) -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(spec) for spec in self.settings.models]}

    def get_model(self, model_id: str) -> dict[str, Any]:
        spec = self.settings.models.get(model_id)
        if spec is None:
            raise NotFoundError(
                f"The model {model_id!r} does not exist.", param="model", code="model_not_found"
            )
        return _model_card(spec)

    # ---- generation -----------------------------------------------------------------------

    def chat(self, req: ChatCompletionRequest, request_id: str) -> Served | Streamed:
        spec = self._spec(req.model, "generation")
        model_request = ModelRequest(
            op="chat",
            model=spec.id,
            request_id=request_id,
            messages=tuple(ChatMessage(role=m.role, content=m.text()) for m in req.messages),
            params=self._params(req, spec, req.token_limit(), chat=True),
            stream=bool(req.stream),
        )
        if req.stream:
            return self._stream(spec, model_request, req, chat=True)
        # -- routing: an async decision queues a job and answers 202 (jobs.py) --
        decision = self.dispatcher.decide(spec, model_request)
        if decision.route == "async":
            accepted = self.dispatcher.submit(spec, model_request, decision)
            headers = {"Location": accepted.location, "Retry-After": "2"}
            if decision.reason == "prefer_async":
                headers["Preference-Applied"] = "respond-async"
            return Served(accepted.job, accepted.route, 0, 0, status_code=202, headers=headers)
        response, route = self.dispatcher.run(spec, model_request, decision)
        # -- end routing --
        result = _generation(response)
        body = chat_completion(result, model=spec.id)
        return Served(body, route, result.prompt_tokens, result.completion_tokens)

    def completion(self, req: CompletionRequest, request_id: str) -> Served | Streamed:
        spec = self._spec(req.model, "generation")
        model_request = ModelRequest(
            op="completion",
            model=spec.id,
            request_id=request_id,
            prompts=tuple(req.prompts()),
            params=self._params(req, spec, req.max_tokens, chat=False),
            stream=bool(req.stream),
        )
        if req.stream:
            return self._stream(spec, model_request, req, chat=False)
        response, route = self.dispatcher.run(spec, model_request)
        result = _generation(response)
        body = text_completion(result, model=spec.id)
        return Served(body, route, result.prompt_tokens, result.completion_tokens)

    # ---- embeddings -----------------------------------------------------------------------

    def embeddings(self, req: EmbeddingRequest, request_id: str) -> Served:
        spec = self._spec(req.model, "embeddings")
        inputs = req.inputs()
        model_request = ModelRequest(
            op="embeddings",
            model=spec.id,
            request_id=request_id,
            inputs=tuple(tuple(i) if isinstance(i, list) else i for i in inputs),  # type: ignore[arg-type]
            dimensions=req.dimensions,
        )
        response, route = self.dispatcher.run(spec, model_request)
        result = _result(response)
        if not isinstance(result, EmbeddingResult):
            raise _unexpected()
        vectors: Sequence[str | list[float]] = (
            result.vectors_b64 if req.encoding_format == "base64" else result.vectors()
        )
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors)
        ]
        body = {
            "object": "list",
            "data": data,
            "model": spec.id,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }
        return Served(body, route, result.prompt_tokens, 0)

    # ---- helpers --------------------------------------------------------------------------

    def _spec(self, model_id: str, kind: Kind) -> ModelSpec:
        spec = self.settings.models.get(model_id)
        if spec is None:
            raise NotFoundError(
                f"The model {model_id!r} does not exist.", param="model", code="model_not_found"
            )
        if spec.kind != kind:
            endpoint = "/v1/embeddings" if spec.kind == "embeddings" else "/v1/chat/completions"
            raise InvalidRequestError(
                f"The model {model_id!r} serves {spec.kind}; use {endpoint}.",
                param="model",
                code="model_not_supported",
            )
        return spec

    def _params(
        self, req: _Sampling, spec: ModelSpec, max_tokens: int | None, *, chat: bool
    ) -> GenerationParams:
        # OpenAI's defaults: chat generates up to the rest of the context (None tells the
        # backend so); the legacy completions API stops at 16 tokens.
        limit = max_tokens
        if limit is None and not chat:
            limit = min(COMPLETIONS_DEFAULT_MAX_TOKENS, spec.context_length)
        if limit is not None and limit > spec.context_length:
            raise InvalidRequestError(
                f"max_tokens is {limit}, but the model's context length is "
                f"{spec.context_length} tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        return GenerationParams(
            max_tokens=limit,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            n=req.n or 1,
            stop=tuple(req.stop_list()),
            seed=req.seed,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
        )

    def _stream(
        self, spec: ModelSpec, model_request: ModelRequest, req: _Sampling, *, chat: bool
    ) -> Streamed:
        items, route = self.dispatcher.stream(spec, model_request)  # primed: no wait here
        first = next(items)
        if isinstance(first, ModelResponse):
            # The model answered before any text, so an error (a prompt over the context
            # length, say) can still leave as a plain 4xx/5xx instead of inside a 200 stream.
            _generation(first)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        tokens = [0, 0]
        events = _sse_events(
            itertools.chain([first], items),
            model=spec.id,
            n=model_request.params.n * max(1, len(model_request.prompts)),
            chat=chat,
            include_usage=include_usage,
            tokens=tokens,
        )
        return Streamed(events, route, tokens)


def _unexpected() -> CirrusError:
    return BackendError("The model backend returned an unexpected result.")


def _result(response: ModelResponse) -> GenerationResult | EmbeddingResult:
    if not response.ok or response.result is None:
        if response.error is None:
            raise _unexpected()
        raise from_model_error(response.error)
    return response.result


def _generation(response: ModelResponse) -> GenerationResult:
    result = _result(response)
    if not isinstance(result, GenerationResult):
        raise _unexpected()
    return result


def _model_card(spec: ModelSpec) -> dict[str, Any]:
    return {"id": spec.id, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


def _sse_events(
    items: Iterator[StreamItem],
    *,
    model: str,
    n: int,
    chat: bool,
    include_usage: bool,
    tokens: list[int],
) -> Iterator[str]:
    """OpenAI's SSE framing: role first, text deltas, finish_reason, optional usage, [DONE]."""
    stream_id = f"chatcmpl-{uuid.uuid4().hex}" if chat else f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    obj = "chat.completion.chunk" if chat else "text_completion"

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        body: dict[str, Any] = {
            "id": stream_id,
            "object": obj,
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
        }
        body.update(extra)
        return _sse(body)

    def piece(
        index: int, text: str | None, finish: str | None, role: bool = False
    ) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}

    sent_text = [False] * n
    try:
        if chat:
            yield chunk([piece(i, "", None, role=True) for i in range(n)])
        for item in items:
            if isinstance(item, StreamDelta):
                if item.text:
                    sent_text[item.index] = True
                    yield chunk([piece(item.index, item.text, None)])
                continue
            result = _generation(item)
            tokens[:] = [result.prompt_tokens, result.completion_tokens]
            for choice in result.choices:
                # A backend that cannot stream sends only the final response: its text then
                # leaves as one delta, so the client still sees the whole answer.
                text = None if sent_text[choice.index] else choice.text
                yield chunk([piece(choice.index, text, choice.finish_reason)])
            if include_usage:
                yield chunk([], usage=usage(result.prompt_tokens, result.completion_tokens))
            break
    except CirrusError as exc:
        yield _sse(exc.body())
    except Exception:  # the 200 is already out: the error must travel inside the stream
        logger("cirrus-api").exception("stream failed after the response started")
        yield _sse(InternalError("The stream failed.").body())
    yield "data: [DONE]\n\n"
