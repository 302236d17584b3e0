"""The one contract between ApiFunction and ModelFunction (version 1).

ApiFunction sends a ModelRequest as the Lambda invoke payload; ModelFunction answers a
ModelResponse. Errors never leave ModelFunction as an unhandled exception: they come back as
`ok: false` with a code from ModelErrorCode, which ApiFunction maps to an HTTP status in one
place (cirrus_common.errors.from_model_error).

Streaming (InvokeWithResponseStream, local stack): the payload is newline-delimited JSON. Each
line but the last is a StreamDelta; the last line is the complete ModelResponse. A function
that does not stream (Lambda's Python runtime in AWS) sends just that final line, so one reader
handles both.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# The seeds a generator accepts (torch.manual_seed): anything else is a client error.
SEED_MIN = -(2**63)
SEED_MAX = 2**64 - 1

PAYLOAD_VERSION = 1  # the `v` field below; bump both together

ModelErrorCode = Literal[
    "invalid_request",  # payload failed validation: a bug in the caller, or a bad value
    "model_not_found",  # id not in the registry, or registry kind mismatch
    "context_length_exceeded",
    "model_load_failed",  # weights missing, corrupt or unverifiable
    "out_of_memory",
    "internal_error",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class GenerationParams(_Strict):
    # None: up to the rest of the context, as OpenAI's chat API does when it is not given.
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)


class ModelRequest(_Strict):
    v: Literal[1] = 1
    op: Literal["chat", "completion", "embeddings"]
    model: str
    request_id: str = ""
    # chat: the conversation, rendered with the model's chat template by ModelFunction
    messages: tuple[ChatMessage, ...] = ()
    # completion: one prompt per entry; each gets `n` choices, indexed prompt-major
    prompts: tuple[str, ...] = ()
    # embeddings: strings, or token id lists already in the model's vocabulary
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...] = ()
    dimensions: int | None = None
    params: GenerationParams = GenerationParams()
    stream: bool = False


class Choice(_Strict):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]


class GenerationResult(_Strict):
    kind: Literal["generation"] = "generation"
    choices: tuple[Choice, ...]
    prompt_tokens: int
    completion_tokens: int


class EmbeddingResult(_Strict):
    kind: Literal["embeddings"] = "embeddings"
    # Each vector as little-endian float32 in base64: a third of the size of decimal floats in
    # JSON, which keeps a full batch under Lambda's 6 MB response limit, and exactly OpenAI's
    # encoding_format=base64, so the API can pass it through.
    vectors_b64: tuple[str, ...]
    prompt_tokens: int

    @classmethod
    def from_vectors(
        cls, vectors: Sequence[Sequence[float]], prompt_tokens: int
    ) -> EmbeddingResult:
        packed = tuple(
            base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii") for v in vectors
        )
        return cls(vectors_b64=packed, prompt_tokens=prompt_tokens)

    def vectors(self) -> list[list[float]]:
        out = []
        for encoded in self.vectors_b64:
            raw = base64.b64decode(encoded)
            out.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
        return out


class ModelError(_Strict):
    code: ModelErrorCode
    message: str
    param: str | None = None


class ModelResponse(_Strict):
    v: Literal[1] = 1
    ok: bool
    result: Annotated[GenerationResult | EmbeddingResult, Field(discriminator="kind")] | None = None
    error: ModelError | None = None

    @classmethod
    def failure(cls, code: ModelErrorCode, message: str, param: str | None = None) -> ModelResponse:
        return cls(ok=False, error=ModelError(code=code, message=message, param=param))


class StreamDelta(_Strict):
    """One piece of generated text for choice `index`, sent as soon as it is decoded."""

    type: Literal["delta"] = "delta"
    index: int
    text: str
