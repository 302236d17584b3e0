"""(3) Dynamic int8 vs fp32: decode tokens/s on a GPT-2-124M-shaped model, and greedy
next-token agreement on the trained demo model (teacher-forced over held-out text)."""

from __future__ import annotations

import copy
import functools
from typing import Any

from bench.common import interleaved
from bench.decode import PROMPT, engine_tps
from cirrus_common.payload import GenerationParams
from cirrus_model.engine import GenerationEngine
from cirrus_model.quantize import quantize_int8


def speed(model: Any, tokenizer: Any, tokens: int, repeats: int = 3) -> dict[str, Any]:
    int8 = quantize_int8(copy.deepcopy(model))
    engines = {}
    for name, m in (("fp32", model), ("int8", int8)):
        engine = GenerationEngine(m, tokenizer, int(model.config.max_position_embeddings))
        engine.eos_ids = []
        engines[name] = engine
    ids = engines["fp32"].encode_chat(PROMPT)
    params = GenerationParams(max_tokens=tokens, temperature=0.0)
    for engine in engines.values():  # warm-up
        engine.start(ids, GenerationParams(max_tokens=4, temperature=0.0)).run()
    med = interleaved(
        {name: functools.partial(engine_tps, e, ids, params) for name, e in engines.items()},
        repeats,
    )
    return {
        "tokens": tokens,
        "fp32_tps": med["fp32"],
        "int8_tps": med["int8"],
        "speedup": med["int8"] / med["fp32"],
        "target_speedup_min": 1.5,
        "int8_model": int8,
    }


def agreement(model: Any, tokenizer: Any, windows: int = 16, length: int = 128) -> dict[str, Any]:
    import torch  # noqa: TID251

    from cirrus_model.demo_model import training_corpus

    int8 = quantize_int8(copy.deepcopy(model))
    ids = tokenizer(training_corpus()[-120_000:], add_special_tokens=False)["input_ids"]
    step = max(length, (len(ids) - length) // windows)
    batch = torch.tensor([ids[i : i + length] for i in range(0, step * windows, step)])
    with torch.inference_mode():
        a = model(input_ids=batch).logits.argmax(-1)
        b = int8(input_ids=batch).logits.argmax(-1)
        truth = batch[:, 1:]
        acc_fp32 = (a[:, :-1] == truth).float().mean().item()
        acc_int8 = (b[:, :-1] == truth).float().mean().item()
    return {
        "positions": int(a.numel()),
        "agreement": float((a == b).float().mean().item()),
        "fp32_next_token_accuracy": acc_fp32,
        "int8_next_token_accuracy": acc_int8,
    }
