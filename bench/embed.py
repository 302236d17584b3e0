"""(4) Embeddings throughput: sentences/s for batch sizes 1, 8 and 32 (all-MiniLM-L6-v2)."""

from __future__ import annotations

import functools
from typing import Any

from bench.common import interleaved, timed
from cirrus_model.embeddings import EmbeddingEngine

SENTENCES = [
    f"Sentence {i}: serverless inference trades idle cost for cold starts, case {i % 7}."
    for i in range(64)
]


def run(repeats: int = 3) -> dict[str, Any]:
    from transformers import AutoModel, AutoTokenizer  # noqa: TID251

    from cirrus_model.loader import minilm_dir

    model: Any = AutoModel.from_pretrained(str(minilm_dir()), use_safetensors=True)
    model.eval()
    engine = EmbeddingEngine(model, AutoTokenizer.from_pretrained(str(minilm_dir())), 256)
    engine.embed(SENTENCES[:8])  # warm-up

    def rate(batch: int) -> float:
        seconds, _ = timed(lambda: engine.embed(SENTENCES, batch_size=batch))
        return len(SENTENCES) / seconds

    med = interleaved({f"batch_{b}": functools.partial(rate, b) for b in (1, 8, 32)}, repeats)
    return {"sentences": len(SENTENCES), **{f"{k}_per_s": v for k, v in med.items()}}
