"""Run an OpenAI-shaped chat request (as TGI's Messages API / LMI receive it) on this engine.

For in-process callers that speak OpenAI's schema rather than the ApiFunction payload, e.g.
the local SageMaker stand-in::

    from cirrus_model.openai_chat import run_chat, iter_chat
    response = run_chat("cirrus-demo", {"messages": [...], "max_tokens": 32})
    for item in iter_chat("cirrus-demo", body):   # StreamDelta..., then ModelResponse
        ...

Both return/yield cirrus_common.payload types and never raise for a bad body: it becomes a
ModelResponse failure with code invalid_request, exactly as through the Lambda handler.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from cirrus_common.payload import ModelRequest, ModelResponse, StreamDelta
from cirrus_model import service
from cirrus_model.errors import InvalidRequest

_PARAMS = ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty")


def chat_request(model: str, body: Mapping[str, Any], request_id: str = "") -> ModelRequest:
    """Translate an OpenAI chat-completions body into a ModelRequest (raises InvalidRequest)."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    params: dict[str, Any] = {k: body[k] for k in _PARAMS if body.get(k) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    stop = body.get("stop")
    if stop is not None:
        params["stop"] = [stop] if isinstance(stop, str) else stop
    try:
        return ModelRequest.model_validate(
            {
                "op": "chat",
                "model": model,
                "request_id": request_id,
                "messages": [_message(m, i) for i, m in enumerate(messages)],
                "params": params,
                "stream": bool(body.get("stream", False)),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequest(f"invalid request: {where}: {first.get('msg')}") from None


def run_chat(model: str, body: Mapping[str, Any], request_id: str = "") -> ModelResponse:
    """The complete ModelResponse (success or structured failure)."""
    try:
        request = chat_request(model, body, request_id)
    except InvalidRequest as exc:
        return service.to_failure(exc)
    return service.respond(request)


def iter_chat(
    model: str, body: Mapping[str, Any], request_id: str = ""
) -> Iterator[StreamDelta | ModelResponse]:
    """StreamDelta items as text is produced, then the final ModelResponse."""
    try:
        request = chat_request(model, body, request_id)
    except InvalidRequest as exc:
        yield service.to_failure(exc)
        return
    yield from service.iter_response(request)


def _message(raw: Any, index: int) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"messages[{index}] must be an object", param="messages")
    content = raw.get("content")
    if isinstance(content, list):  # content parts: only text is meaningful to a text model
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise InvalidRequest(
                    f"messages[{index}]: only text content parts are supported", param="messages"
                )
            texts.append(str(part.get("text", "")))
        content = "".join(texts)
    elif content is None:
        content = ""
    return {"role": str(raw.get("role", "")), "content": str(content)}
