"""Sentence embeddings the way all-MiniLM-L6-v2's sentence-transformers config says:
BERT → mean of the token vectors under the attention mask → L2 normalisation.

Inputs are strings, or token-id lists already in the model's vocabulary (OpenAI's API allows
both); ids get the same [CLS] ... [SEP] framing a string would. Inputs longer than the model's
context are rejected (as OpenAI does), not silently truncated as sentence-transformers would.

`dimensions`: vectors are truncated to the first `dimensions` components and renormalised,
which is what OpenAI does for text-embedding-3 and sentence-transformers' `truncate_dim` does.
MiniLM was not trained Matryoshka-style, so truncated vectors lose more quality than
text-embedding-3's do; larger than the model's width is an invalid_request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cirrus_model.errors import ContextLengthExceeded, InvalidRequest

BATCH_SIZE = 32


@dataclass(frozen=True)
class EmbeddingOutput:
    vectors: list[list[float]]
    prompt_tokens: int


class EmbeddingEngine:
    def __init__(self, model: Any, tokenizer: Any, context_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.width = int(model.config.hidden_size)
        # Token-id inputs get the framing the tokenizer gives text: [CLS] ... [SEP] for BERT.
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self._head: list[int] = [int(cls_id)] if cls_id is not None else []
        self._tail: list[int] = [int(sep_id)] if sep_id is not None else []

    def embed(
        self,
        inputs: Sequence[str | Sequence[int]],
        dimensions: int | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> EmbeddingOutput:
        if not inputs:
            raise InvalidRequest("input must not be empty", param="input")
        if dimensions is not None and not 1 <= dimensions <= self.width:
            raise InvalidRequest(
                f"dimensions must be between 1 and {self.width} for this model, got {dimensions}",
                param="dimensions",
            )
        encoded = [self._encode(item, i) for i, item in enumerate(inputs)]
        vectors: list[list[float]] = []
        for start in range(0, len(encoded), batch_size):
            vectors.extend(self._embed_batch(encoded[start : start + batch_size], dimensions))
        return EmbeddingOutput(vectors=vectors, prompt_tokens=sum(len(ids) for ids in encoded))

    def _encode(self, item: str | Sequence[int], position: int) -> list[int]:
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"input[{position}] is an empty string", param="input")
            ids = list(self.tokenizer(item, add_special_tokens=True)["input_ids"])
        else:
            vocab = int(self.model.config.vocab_size)
            if not item or any(not 0 <= t < vocab for t in item):
                raise InvalidRequest(
                    f"input[{position}] must be a non-empty list of token ids in [0, {vocab})",
                    param="input",
                )
            ids = [*self._head, *item, *self._tail]
        if len(ids) > self.context_length:
            raise ContextLengthExceeded(
                f"input[{position}] is {len(ids)} tokens; this model's maximum context length "
                f"is {self.context_length} tokens",
                param="input",
            )
        return ids

    def _embed_batch(self, batch: list[list[int]], dimensions: int | None) -> list[list[float]]:
        import torch  # noqa: TID251

        # Length-sorting is unnecessary at these sizes; pad to the batch's longest input.
        width = max(len(ids) for ids in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            if dimensions is not None:
                pooled = pooled[:, :dimensions]
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=-1)
        return [list(map(float, row)) for row in pooled.tolist()]
