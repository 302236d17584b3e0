"""The demo generation model: a tiny GPT-2 trained offline on the Python docs that ship with
CPython (pydoc_data.topics), saved in Hugging Face format.

It is a toy. It exists so that Cirrus runs end to end on a laptop with no hub access: the same
loading code serves a real model from a directory or an s3:// prefix (see docs/model.md).

Reproducible: a fixed recipe (tokenizer, architecture, data order, a fixed number of optimiser
steps, seed). Training runs a fixed step count rather than a time budget so the result does
not depend on how fast the machine is; bit-for-bit equality is only promised on the same CPU
kind and thread count, as float reductions are ordered differently elsewhere.

Cached: built in a temporary directory beside the target, then renamed into place together
with a manifest (sizes, sha256, the recipe). A later call finds the manifest, checks sizes and
the recipe, and reuses the copy; a file lock keeps two processes from training at once.

Run `python -m cirrus_model.demo_model [--cache-dir DIR] [--force]` to build it ahead of time.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cirrus_common.settings import get_settings
from cirrus_model.manifest import (
    ManifestError,
    read_manifest,
    replaced_atomically,
    verify,
    write_manifest,
)

DEMO_MODEL_DIRNAME = "cirrus-demo-v1"

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# ChatML: one template for every role the payload allows. Kept in tokenizer_config.json so any
# Hugging Face tooling renders prompts exactly as Cirrus does.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the weights; its hash-free JSON form sits in the manifest."""

    version: int = 2  # 2: generation also stops at <|im_start|>
    vocab_size: int = 4096
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 256
    seq_len: int = 256
    batch_size: int = 8
    steps: int = 420
    warmup_steps: int = 20
    lr: float = 1.5e-3
    weight_decay: float = 0.01
    seed: int = 1234


RECIPE = Recipe()

_build_lock = threading.Lock()


def default_cache_dir() -> Path:
    return Path(get_settings().model_cache_dir).expanduser()


def ensure_demo_model(cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """Return the directory of the demo model, building it first if no valid copy is cached.

    `cache_dir` defaults to settings.model_cache_dir (CIRRUS_MODEL_CACHE_DIR); the model lives
    in `<cache_dir>/cirrus-demo-v1/`. `progress` receives one-line human-readable updates.
    """
    root = (cache_dir or default_cache_dir()).expanduser()
    target = root / DEMO_MODEL_DIRNAME
    say = progress or (lambda _msg: None)
    if is_valid_copy(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _build_lock, _file_lock(root / f".{DEMO_MODEL_DIRNAME}.lock"):
        if is_valid_copy(target):  # another thread or process built it while we waited
            return target
        build_demo_model(target, progress=say)
    return target


def is_valid_copy(target: Path) -> bool:
    """A complete build of the current recipe (sizes checked against its manifest)."""
    try:
        found = read_manifest(target)
        if found is None:
            return False
        files, doc = found
        if doc.get("recipe") != asdict(RECIPE):
            return False
        verify(target, files, check_digest=False)
    except (ManifestError, OSError):
        return False
    return True


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_demo_model(target: Path, progress: Progress | None = None) -> Path:
    """Train the demo model and move it atomically to `target` (replacing a stale copy)."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    with replaced_atomically(target) as tmp:
        corpus = training_corpus()
        say(f"demo model: training tokenizer on {len(corpus) // 1024} KiB of Python docs")
        tokenizer = train_tokenizer(corpus)
        save_tokenizer(tokenizer, tmp)
        ids = tokenizer.encode(corpus).ids
        say(f"demo model: {len(ids)} training tokens; training {RECIPE.steps} steps")
        _train_and_save_model(ids, tokenizer, tmp, say)
        write_manifest(
            tmp,
            {"recipe": asdict(RECIPE), "name": DEMO_MODEL_DIRNAME, "bf16_autocast": _native_bf16()},
        )
    say(f"demo model: ready in {time.perf_counter() - started:.1f}s at {target}")
    return target


def training_corpus() -> str:
    """The docs as ChatML conversations, so the model also learns the chat turn format."""
    from pydoc_data.topics import topics

    parts = []
    for name in sorted(topics):
        question = f"What does the Python documentation say about {name.replace('-', ' ')}?"
        parts.append(
            f"{IM_START}user\n{question}{IM_END}\n"
            f"{IM_START}assistant\n{_prose(topics[name])}{IM_END}\n"
        )
    return "".join(parts)


# Table borders, heading underlines and table rows teach a small model little but "|   |";
# dropping them leaves prose and code examples, which is what the demo should imitate.
_NOISE_LINE = re.compile(r"^\s*(?:[+|].*|[=*\-~^]{3,}\s*)$")


def _prose(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines() if not _NOISE_LINE.match(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def train_tokenizer(corpus: str, vocab_size: int = RECIPE.vocab_size) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style) with the ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # One "document" per line keeps the trainer's pair counts deterministic and cheap.
    tokenizer.train_from_iterator(corpus.splitlines(keepends=True), trainer=trainer)
    return tokenizer


def save_tokenizer(tokenizer: Any, out: Path, max_length: int = RECIPE.n_positions) -> None:
    """tokenizer.json plus a tokenizer_config.json carrying the ChatML chat template."""
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": ENDOFTEXT,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    specials = {"bos_token": ENDOFTEXT, "eos_token": IM_END, "pad_token": ENDOFTEXT}
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


def _train_and_save_model(ids: list[int], tokenizer: Any, out: Path, say: Progress) -> None:
    import torch  # noqa: TID251
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel  # noqa: TID251

    torch.manual_seed(RECIPE.seed)
    eot = tokenizer.token_to_id(ENDOFTEXT)
    im_end = tokenizer.token_to_id(IM_END)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=RECIPE.n_positions,
        n_embd=RECIPE.n_embd,
        n_layer=RECIPE.n_layer,
        n_head=RECIPE.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eot,
        eos_token_id=im_end,
        pad_token_id=eot,
        tie_word_embeddings=True,
    )
    model: Any = GPT2LMHeadModel(config)
    model.train()
    data = torch.tensor(ids, dtype=torch.long)
    batches = torch.Generator().manual_seed(RECIPE.seed)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=RECIPE.lr, betas=(0.9, 0.95), weight_decay=RECIPE.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, _lr_factor)
    n_params = sum(p.numel() for p in model.parameters())
    bf16 = _native_bf16()
    say(f"demo model: {n_params / 1e6:.1f}M parameters, {'bf16' if bf16 else 'fp32'} autocast")
    started = time.perf_counter()
    for step in range(RECIPE.steps):
        starts = torch.randint(
            0, len(ids) - RECIPE.seq_len - 1, (RECIPE.batch_size,), generator=batches
        )
        window = torch.stack([data[s : s + RECIPE.seq_len] for s in starts.tolist()])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=window, labels=window).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 20 == 0 or step == RECIPE.steps - 1:
            elapsed = time.perf_counter() - started
            done = f"step {step + 1}/{RECIPE.steps}"
            say(f"demo model: {done} loss {loss.item():.3f} ({elapsed:.0f}s)")
    model.eval()
    # A turn ends at <|im_end|>, and also where the model opens a new turn: a toy model this
    # small sometimes skips the end marker, and must not write the user's next line.
    im_start = tokenizer.token_to_id(IM_START)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=eot, eos_token_id=[im_end, eot, im_start], pad_token_id=eot
    )
    model.save_pretrained(out)  # safetensors: transformers' default serialisation


def _native_bf16() -> bool:
    """bf16 autocast halves training time on CPUs with AMX/AVX512-BF16 and slows others.

    Weights stay fp32 either way (autocast only lowers the matmuls); the choice is recorded in
    the manifest because it changes the exact weights.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def _lr_factor(step: int) -> float:
    if step < RECIPE.warmup_steps:
        return (step + 1) / RECIPE.warmup_steps
    progress = (step - RECIPE.warmup_steps) / max(1, RECIPE.steps - RECIPE.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Cirrus demo model (offline).")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: settings")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    if args.force:
        root = (args.cache_dir or default_cache_dir()).expanduser()
        print(build_demo_model(root / DEMO_MODEL_DIRNAME, progress=print))
    else:
        print(ensure_demo_model(args.cache_dir, progress=print))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
