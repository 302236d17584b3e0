"""OpenAI's response bodies, built in one place from a model result.

The API, the async job view and the local SageMaker stand-in (which plays the GPU
container's OpenAI-compatible Messages API) all answer in these shapes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from cirrus_common.payload import GenerationResult


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    result: GenerationResult,
    *,
    model: str,
    completion_id: str | None = None,
    created: int | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    return {
        "id": completion_id or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.text},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for c in result.choices
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
        "system_fingerprint": fingerprint,
    }


def text_completion(result: GenerationResult, *, model: str) -> dict[str, Any]:
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": c.index, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
            for c in result.choices
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
        "system_fingerprint": None,
    }
