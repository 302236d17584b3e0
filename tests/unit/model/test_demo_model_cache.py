"""ensure_demo_model reuses a complete build and rebuilds a partial or stale one (no training
here: the builder is replaced by a stub that writes a manifest like the real one)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from cirrus_model import demo_model
from cirrus_model.manifest import write_manifest


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def fake_build(target: Path, progress: demo_model.Progress | None = None) -> Path:
        calls.append(target)
        target.mkdir(parents=True)
        (target / "model.safetensors").write_bytes(b"weights")
        write_manifest(target, {"recipe": asdict(demo_model.RECIPE)})
        return target

    monkeypatch.setattr(demo_model, "build_demo_model", fake_build)
    return calls


def test_builds_once_then_reuses(builds: list[Path], tmp_path: Path) -> None:
    first = demo_model.ensure_demo_model(tmp_path)
    assert first == tmp_path / demo_model.DEMO_MODEL_DIRNAME
    assert demo_model.ensure_demo_model(tmp_path) == first
    assert len(builds) == 1


def test_truncated_copy_is_rebuilt(builds: list[Path], tmp_path: Path) -> None:
    target = demo_model.ensure_demo_model(tmp_path)
    (target / "model.safetensors").write_bytes(b"w")  # size no longer matches the manifest
    assert not demo_model.is_valid_copy(target)
    import shutil

    shutil.rmtree(target)  # the real builder replaces the stale copy; the stub needs it gone
    demo_model.ensure_demo_model(tmp_path)
    assert len(builds) == 2


def test_default_cache_dir_comes_from_settings(
    builds: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cirrus_common.settings import get_settings

    monkeypatch.setenv("CIRRUS_MODEL_CACHE_DIR", str(tmp_path / "from-env"))
    get_settings.cache_clear()
    try:
        assert demo_model.ensure_demo_model() == tmp_path / "from-env" / "cirrus-demo-v1"
    finally:
        get_settings.cache_clear()


def test_training_corpus_is_prose_in_chat_turns() -> None:
    corpus = demo_model.training_corpus()
    assert 300_000 < len(corpus) < 600_000
    assert corpus.count("<|im_start|>assistant\n") >= 70
    assert "+-----" not in corpus
