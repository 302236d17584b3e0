"""Prompt token counting in ApiFunction: the model's tokenizer.json, or a logged estimate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from cirrus_api import tokens
from cirrus_api.tokens import TokenCounter
from cirrus_common.payload import ChatMessage, ModelRequest
from cirrus_common.registry import default_registry

DEMO = default_registry().models["cirrus-demo"]


def chat(*texts: str) -> ModelRequest:
    return ModelRequest(
        op="chat",
        model="cirrus-demo",
        messages=tuple(ChatMessage(role="user", content=t) for t in texts),
    )


def word_tokenizer(path: Path) -> Path:
    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    path.mkdir(parents=True, exist_ok=True)
    tk.save(str(path / "tokenizer.json"))
    return path


def test_demo_dirname_matches_the_model_package() -> None:
    from cirrus_model.demo_model import DEMO_MODEL_DIRNAME

    assert tokens.DEMO_MODEL_DIRNAME == DEMO_MODEL_DIRNAME


def test_counts_with_the_models_tokenizer(tmp_path: Path) -> None:
    word_tokenizer(tmp_path / tokens.DEMO_MODEL_DIRNAME)
    counter = TokenCounter(str(tmp_path))
    framing = tokens.MESSAGE_OVERHEAD * 2 + tokens.REPLY_OVERHEAD
    assert counter.count(DEMO, chat("hello world", "hello")) == 3 + framing
    completion = ModelRequest(op="completion", model="cirrus-demo", prompts=("hello", "world x"))
    assert counter.count(DEMO, completion) == 3


def test_registry_tokenizer_field_wins(tmp_path: Path) -> None:
    spec = replace(DEMO, tokenizer=str(word_tokenizer(tmp_path / "custom") / "tokenizer.json"))
    assert TokenCounter("/nonexistent").count(spec, chat("hello hello hello")) == 3 + 7


def test_missing_tokenizer_estimates_and_retries_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    counter = TokenCounter(str(tmp_path), clock=lambda: now[0])
    assert counter.count(DEMO, chat("x" * 40)) == 10 + 7  # chars/4
    word_tokenizer(tmp_path / tokens.DEMO_MODEL_DIRNAME)  # the demo model finishes building
    assert counter.tokenizer(DEMO) is None  # not looked up again yet
    now[0] += tokens.RETRY_S
    assert counter.tokenizer(DEMO) is not None


def test_s3_tokenizer(tmp_path: Path) -> None:
    raw = (word_tokenizer(tmp_path) / "tokenizer.json").read_bytes()

    class S3:
        def __init__(self) -> None:
            self.keys: list[tuple[str, str]] = []

        def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
            self.keys.append((Bucket, Key))

            class Body:
                def read(self) -> bytes:
                    return raw

            return {"Body": Body()}

    s3 = S3()
    spec = replace(DEMO, source="s3://models/demo/")
    assert TokenCounter("/x", s3_client=s3).count(spec, chat("world")) == 1 + 7
    assert s3.keys == [("models", "demo/tokenizer.json")]
    assert json.loads(raw)  # the file itself is what tokenizers saved


def test_builtin_without_tokenizer_file_is_estimated() -> None:
    minilm = default_registry().models["all-MiniLM-L6-v2"]
    assert TokenCounter("/x").location(minilm) is None


def test_truncation_in_a_tokenizer_file_does_not_hide_tokens(tmp_path: Path) -> None:
    directory = word_tokenizer(tmp_path / tokens.DEMO_MODEL_DIRNAME)
    truncating = Tokenizer.from_file(str(directory / "tokenizer.json"))
    truncating.enable_truncation(max_length=4)
    truncating.save(str(directory / "tokenizer.json"))
    completion = ModelRequest(op="completion", model="cirrus-demo", prompts=("hello " * 50,))
    assert TokenCounter(str(tmp_path)).measure(DEMO, completion) == (50, 50)
