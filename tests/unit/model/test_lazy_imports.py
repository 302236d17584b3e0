"""Importing ModelFunction's handler must not import torch or transformers (cold start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.imports import heavy_modules_after


def test_handler_module_stays_light() -> None:
    assert (
        heavy_modules_after("import cirrus_model.app\nfrom cirrus_model.app import handler, stream")
        == set()
    )


def test_invalid_request_needs_no_torch() -> None:
    statement = (
        "from cirrus_model.app import handler\nassert handler({'op': 'nope'})['ok'] is False"
    )
    assert heavy_modules_after(statement) == set()


def test_probe_sees_torch() -> None:
    assert heavy_modules_after("import torch") == {"torch"}


def test_preload_setting_loads_at_init(tiny_dir: Path) -> None:
    import json
    import os

    env = {
        **os.environ,
        "CIRRUS_MODEL_PRELOAD": "true",
        "CIRRUS_MODELS": json.dumps({"tiny": {"kind": "generation", "source": str(tiny_dir)}}),
    }
    code = (
        "import cirrus_model.app\nfrom cirrus_model import loader\nprint(loader.loaded_model_ids())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    ).stdout.strip()
    assert out.splitlines()[-1] == "['tiny']"
