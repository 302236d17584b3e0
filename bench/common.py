"""Shared helpers: timing, the models the benchmarks run, result files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run each rate-returning fn `repeats` times, alternating; the best rate of each.

    On a shared machine other processes only ever slow a run down, so the best of several
    interleaved runs is the least noisy estimate of what each side can do; alternating keeps
    slow phases of the machine from landing on one side only.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        order = list(fns.items()) if i % 2 == 0 else list(reversed(fns.items()))
        for name, fn in order:
            samples[name].append(fn())
    return {name: max(values) for name, values in samples.items()}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def demo_dir() -> Path:
    from cirrus_model.demo_model import ensure_demo_model

    return ensure_demo_model(progress=print)


def gpt2_124m_dir() -> Path:
    """A GPT-2-124M-shaped model with random weights (no hub), cached beside the results."""
    from transformers import GPT2Config, GPT2LMHeadModel  # noqa: TID251

    from cirrus_model.demo_model import save_tokenizer, train_tokenizer, training_corpus

    target = RESULTS / "gpt2-124m-random"
    if (target / "model.safetensors").is_file():
        return target
    import torch  # noqa: TID251

    torch.manual_seed(0)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(training_corpus()[:100_000], vocab_size=4096)
    save_tokenizer(tokenizer, target, max_length=1024)
    # GPT-2 small's shape, with its 50257-token vocabulary so the LM head costs what it does
    # in the real model (the tokenizer only ever produces the first 4096 ids).
    model: Any = GPT2LMHeadModel(GPT2Config(vocab_size=50257, eos_token_id=2, bos_token_id=0))
    model.save_pretrained(target)
    return target


def load(directory: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: TID251

    model: Any = AutoModelForCausalLM.from_pretrained(str(directory), use_safetensors=True)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(directory))


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
