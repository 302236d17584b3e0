"""A scripted backend for tests of the API layer (the model path has its own real tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cirrus_api.backends.base import StreamItem
from cirrus_common.payload import (
    Choice,
    EmbeddingResult,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)


@dataclass
class ScriptedBackend:
    """Answers every request from its fields, so tests can check what reached the backend."""

    name: str = "lambda"
    text: str = "Hello there"
    calls: list[ModelRequest] = field(default_factory=list)
    fail: Callable[[ModelRequest], Exception | None] | None = None

    def run(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(request)
        if self.fail is not None and (error := self.fail(request)) is not None:
            raise error
        if request.op == "embeddings":
            vectors = tuple((1.0, 0.0, 0.5) for _ in request.inputs)
            return ModelResponse(
                ok=True, result=EmbeddingResult.from_vectors(vectors, prompt_tokens=len(vectors))
            )
        count = request.params.n * max(1, len(request.prompts))
        choices = tuple(Choice(index=i, text=self.text, finish_reason="stop") for i in range(count))
        return ModelResponse(
            ok=True,
            result=GenerationResult(choices=choices, prompt_tokens=7, completion_tokens=2 * count),
        )

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        final = self.run(request)
        for word in self.text.split(" "):
            yield StreamDelta(index=0, text=word + " ")
        yield final
