"""Tiny models for fast engine tests: a randomly initialised GPT-2 and a scripted fake."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch  # noqa: TID251 - model tests need the real thing
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: TID251

from cirrus_model.demo_model import ENDOFTEXT, IM_END, save_tokenizer, train_tokenizer

CORPUS = (
    "The quick brown fox jumps over the lazy dog. Python lists are mutable sequences. "
    "A dict maps keys to values; a tuple is immutable. Café, naïve, 20€ and 😀 are unicode. "
    "STOP here. The end.\n"
) * 20


def build_tiny_gpt2(directory: Path, n_positions: int = 64, seed: int = 0) -> Path:
    tokenizer = train_tokenizer(CORPUS, vocab_size=320)
    directory.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, directory, max_length=n_positions)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.token_to_id(ENDOFTEXT),
        eos_token_id=tokenizer.token_to_id(IM_END),
        pad_token_id=tokenizer.token_to_id(ENDOFTEXT),
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    # Larger-than-default init so sampling is far from uniform and outputs differ visibly.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    model.save_pretrained(directory)
    return directory


class ScriptedLM(torch.nn.Module):
    """Emits a fixed token sequence (one-hot logits), whatever the input: for exact tests."""

    def __init__(self, script: Sequence[int], vocab_size: int, eos_id: int) -> None:
        super().__init__()
        self.script = list(script)
        self.vocab_size = vocab_size
        self.generation_config = SimpleNamespace(eos_token_id=eos_id)

    def forward(self, input_ids: torch.Tensor, cache: Any = None, **_: Any) -> Any:
        step = 0 if cache is None else cache
        token = self.script[step] if step < len(self.script) else self.script[-1]
        logits = torch.full((input_ids.shape[0], 1, self.vocab_size), -1e9)
        logits[:, :, token] = 0.0
        return SimpleNamespace(logits=logits, cache=step + 1)
