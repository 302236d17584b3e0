"""OpenAI request and response shapes (the subset Cirrus serves), as pydantic models.

Requests are validated strictly ("100" is not an int, 1.0 is not a bool) because silently
coercing is how clients end up with behaviour they did not ask for. Unknown fields are
allowed and ignored, as vLLM does, so newer SDKs keep working; the app logs their names.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_N = 8
MAX_STOP = 4
MAX_MESSAGES = 512
MAX_EMBEDDING_INPUTS = 256


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _content_present(self) -> ChatMessageIn:
        if self.content is None or (isinstance(self.content, list) and not self.content):
            raise ValueError("each message needs content: a string or a list of text parts")
        return self

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content or ())


class StreamOptions(_Request):
    include_usage: bool = False


class _Sampling(_Request):
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=MAX_N)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    user: str | None = None
    # Declared so that asking for them is refused instead of silently ignored.
    logprobs: bool | None = None
    echo: bool | None = None
    best_of: int | None = None

    @model_validator(mode="after")
    def _check_common(self) -> _Sampling:
        stops = self.stop_list()
        if len(stops) > MAX_STOP:
            raise ValueError(f"stop: at most {MAX_STOP} sequences are allowed")
        if any(s == "" for s in stops):
            raise ValueError("stop: sequences must be non-empty strings")
        if self.logprobs:
            raise ValueError("logprobs: not supported by this server")
        if self.echo:
            raise ValueError("echo: not supported by this server")
        if self.best_of not in (None, 1):
            raise ValueError("best_of: only 1 is supported")
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
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Literal["none"] | None = None

    @model_validator(mode="after")
    def _no_tools(self) -> ChatCompletionRequest:
        if self.tools:
            raise ValueError("tools: tool calling is not supported by this server")
        return self

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens else self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(union_mode="left_to_right")
    suffix: str | None = None

    @model_validator(mode="after")
    def _check_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and not (1 <= len(self.prompt) <= MAX_N):
            raise ValueError(f"prompt: a list must hold between 1 and {MAX_N} strings")
        if self.suffix:
            raise ValueError("suffix: not supported by this server")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @model_validator(mode="after")
    def _check_input(self) -> EmbeddingRequest:
        items = self.inputs()
        if not items:
            raise ValueError("input: must not be empty")
        if len(items) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"input: at most {MAX_EMBEDDING_INPUTS} items per request")
        for item in items:
            if isinstance(item, str) and item == "":
                raise ValueError("input: strings must be non-empty")
            if isinstance(item, list) and (not item or any(t < 0 for t in item)):
                raise ValueError("input: token arrays must be non-empty, ids non-negative")
        return self

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
