"""(2) Decode tokens/s: Cirrus's engine vs plain model.generate, same model, same settings.

Both sides generate exactly `tokens` new tokens (eos disabled) from the same chat prompt, run
interleaved; greedy outputs are also compared token for token as a correctness check.
"""

from __future__ import annotations

from typing import Any

from bench.common import interleaved, timed
from cirrus_common.payload import GenerationParams
from cirrus_model.engine import GenerationEngine

PROMPT = [{"role": "user", "content": "What does the Python documentation say about classes?"}]


def engine_tps(engine: GenerationEngine, ids: list[int], params: GenerationParams) -> float:
    seconds, run = timed(lambda: engine.start(ids, params).run())
    return float(run.completion_tokens) / seconds


def generate_tps(model: Any, ids: list[int], tokens: int, sample: bool) -> float:
    import torch  # noqa: TID251

    input_ids = torch.tensor([ids])
    extra: dict[str, Any] = {"temperature": 0.8, "top_p": 0.9} if sample else {}
    with torch.inference_mode():
        seconds, out = timed(
            lambda: model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=sample,
                pad_token_id=0,
                **extra,
            )
        )
    return float(out.shape[1] - len(ids)) / seconds


def run(model: Any, tokenizer: Any, tokens: int, repeats: int = 3) -> dict[str, Any]:
    context = int(model.config.max_position_embeddings)
    engine = GenerationEngine(model, tokenizer, context)
    engine.eos_ids = []  # both sides run exactly `tokens` steps
    ids = engine.encode_chat(PROMPT)
    greedy = GenerationParams(max_tokens=tokens, temperature=0.0)
    sampled = GenerationParams(max_tokens=tokens, temperature=0.8, top_p=0.9, seed=0)
    # Warm-up (first calls allocate) and the greedy equality check.
    ours = engine.start(ids, greedy).run().choices[0].text
    import torch  # noqa: TID251

    with torch.inference_mode():
        ref = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=0,
        )
    theirs = engine.decode(ref[0, len(ids) :].tolist())
    med = interleaved(
        {
            "engine_greedy": lambda: engine_tps(engine, ids, greedy),
            "generate_greedy": lambda: generate_tps(model, ids, tokens, sample=False),
            "engine_sampled": lambda: engine_tps(engine, ids, sampled),
            "generate_sampled": lambda: generate_tps(model, ids, tokens, sample=True),
        },
        repeats,
    )
    return {
        "tokens": tokens,
        "prompt_tokens": len(ids),
        "greedy_output_identical": ours == theirs,
        **{f"{k}_tps": v for k, v in med.items()},
        "ratio_greedy": med["engine_greedy"] / med["generate_greedy"],
        "ratio_sampled": med["engine_sampled"] / med["generate_sampled"],
        "target_ratio_min": 0.95,
    }
