from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cirrus_common.settings import get_settings
from cirrus_model import loader
from cirrus_model.engine import GenerationEngine
from tests.unit.model.tiny import build_tiny_gpt2


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_loaded(tiny_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: TID251

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    model: Any = AutoModelForCausalLM.from_pretrained(str(tiny_dir), use_safetensors=True)
    model.eval()
    return model, tokenizer


@pytest.fixture
def engine(tiny_loaded: tuple[Any, Any]) -> GenerationEngine:
    model, tokenizer = tiny_loaded
    return GenerationEngine(model, tokenizer, context_length=64)


@pytest.fixture
def registry_env(
    monkeypatch: pytest.MonkeyPatch, tiny_dir: Path, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """Point the process settings at the tiny model (and a throwaway cache dir)."""
    models = {
        "tiny": {"kind": "generation", "source": str(tiny_dir), "context_length": 64},
        "all-MiniLM-L6-v2": {"kind": "embeddings", "source": "builtin:minilm"},
        "missing": {"kind": "generation", "source": str(tmp_path / "nowhere")},
        "nobuiltin": {"kind": "generation", "source": "builtin:nope"},
    }
    monkeypatch.setenv("CIRRUS_MODELS", json.dumps(models))
    monkeypatch.setenv("CIRRUS_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    loader.forget_all()
    yield models
    get_settings.cache_clear()
    loader.forget_all()
