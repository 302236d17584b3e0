"""The real demo model: Hugging Face layout, loads through the registry, writes docs-ish prose."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cirrus_common.payload import ModelResponse
from cirrus_common.registry import DEMO_MODEL_ID
from cirrus_model import app

COMMON = {"the", "is", "a", "of", "in", "to", "and", "statement", "an", "be", "object", "for"}


def test_layout_is_hugging_face_format(demo_dir: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "cirrus-manifest.json",
    ):
        assert (demo_dir / name).is_file(), name
    assert "chat_template" in json.loads((demo_dir / "tokenizer_config.json").read_text())
    config = json.loads((demo_dir / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_positions"] == 256
    assert not list(demo_dir.glob("*.bin"))


def chat(content: str, **params: object) -> ModelResponse:
    body = app.handler(
        {
            "op": "chat",
            "model": DEMO_MODEL_ID,
            "messages": [{"role": "user", "content": content}],
            "params": {"max_tokens": 48, **params},
        },
        None,
    )
    return ModelResponse.model_validate(body)


def test_generates_english_ish_prose(demo_dir: Path) -> None:
    texts = []
    for seed in range(3):
        response = chat("What does the Python documentation say about exceptions?", seed=seed)
        assert response.ok and response.result is not None
        assert response.result.kind == "generation"
        texts.append(response.result.choices[0].text)
    words = re.findall(r"[A-Za-z]+", " ".join(texts).lower())
    assert len(words) >= 20
    common = sum(w in COMMON for w in words)
    assert common / len(words) > 0.1, texts
    letters = sum(c.isalpha() or c.isspace() for c in "".join(texts))
    assert letters / max(1, len("".join(texts))) > 0.6


def test_greedy_stream_matches_handler(demo_dir: Path) -> None:
    event = {
        "op": "chat",
        "model": DEMO_MODEL_ID,
        "messages": [{"role": "user", "content": "Tell me about classes."}],
        "params": {"max_tokens": 30, "temperature": 0, "stop": ["."]},
    }
    lines = [json.loads(x) for x in b"".join(app.stream(event)).splitlines()]
    final = ModelResponse.model_validate(lines[-1])
    assert final.result is not None and final.result.kind == "generation"
    streamed = "".join(line["text"] for line in lines[:-1])
    assert streamed == final.result.choices[0].text
    assert "." not in streamed
    again = ModelResponse.model_validate(app.handler(event))
    assert again.result == final.result


def test_context_limit_is_the_models_256(demo_dir: Path) -> None:
    response = chat("hi", max_tokens=256)
    assert not response.ok and response.error is not None
    assert response.error.code == "context_length_exceeded"
    assert "256" in response.error.message
