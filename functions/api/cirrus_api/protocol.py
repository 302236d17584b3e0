"""OpenAI request and response shapes (the subset Cirrus serves), as pydantic models.

Requests are validated strictly ("100" is not an int, 1.0 is not a bool) because silently
coercing is how clients end up with behaviour they did not ask for. Unknown fields are
allowed and ignored, as vLLM does, so newer SDKs keep working; the app logs their names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from cirrus_common.payload import SEED_MAX, SEED_MIN

MAX_N = 8
MAX_STOP = 4
MAX_MESSAGES = 512
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit; LangChain sends up to 1,000 at a time


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class TextPart(_Request):
    type: Literal["text"]
    text: str


def _integral(value: Any) -> Any:
    # JSON has one number type: 100.0 is the integer 100 (JSON Schema agrees). Strings,
    # bools and fractions stay errors.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_Integral = BeforeValidator(_integral)
# Constraints go before the validator so that they land in the JSON schema as minimum/maximum.
PositiveInt = Annotated[int, Field(ge=1), _Integral]
TokenId = Annotated[int, Field(ge=0), _Integral]
NonEmptyStr = Annotated[str, Field(min_length=1)]
TokenIds = Annotated[list[TokenId], Field(min_length=1)]


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Annotated[list[TextPart], Field(min_length=1)]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content or ())


class StreamOptions(_Request):
    include_usage: bool = False


# stream_options is only allowed with "stream": true (as OpenAI answers), in schema form.
_STREAM_OPTIONS_NEED_STREAM: JsonDict = {
    "if": {
        "required": ["stream_options"],
        "properties": {"stream_options": {"type": "object"}},
    },
    "then": {"required": ["stream"], "properties": {"stream": {"const": True}}},
}


class _Sampling(_Request):
    model_config = ConfigDict(json_schema_extra=_STREAM_OPTIONS_NEED_STREAM)

    model: str = Field(min_length=1)
    max_tokens: PositiveInt | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: Annotated[int, Field(ge=1, le=MAX_N), _Integral] | None = None
    stop: NonEmptyStr | Annotated[list[NonEmptyStr], Field(max_length=MAX_STOP)] | None = None
    seed: Annotated[int, Field(ge=SEED_MIN, le=SEED_MAX), _Integral] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    user: str | None = None
    # Declared so that asking for them is refused instead of silently ignored.
    logprobs: Literal[False] | None = None
    top_logprobs: Literal[0] | None = None
    logit_bias: Annotated[dict[str, float], Field(max_length=0)] | None = None
    echo: Literal[False] | None = None
    best_of: Literal[1] | None = None

    @model_validator(mode="after")
    def _check_common(self) -> _Sampling:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed when stream is true")
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ResponseFormat(_Request):
    type: Literal["text"]


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: PositiveInt | None = None
    response_format: ResponseFormat | None = None
    # Tool calling is not supported: an empty list or "none" is all that is accepted.
    tools: Annotated[list[Any], Field(max_length=0)] | None = None
    tool_choice: Literal["none"] | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens else self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=MAX_N)]
    suffix: Literal[""] | None = None  # insertion is not supported

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: (
        NonEmptyStr
        | Annotated[list[NonEmptyStr], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: PositiveInt | None = None
    user: str | None = None

    def inputs(self) -> list[str] | list[list[int]]:
        value = self.input
        if isinstance(value, str):
            return [value]
        if value and isinstance(value[0], int):
            return [[int(t) for t in value]]  # one prompt given as token ids
        return cast("list[str] | list[list[int]]", list(value))


# ---- responses (documented in the OpenAPI schema; the app builds plain dicts) ------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
