"""ApiFunction's process must never load torch or transformers (its cold start is the API's)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers")


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    return {m for m in out.split(",") if m}


def test_api_app_and_handler_stay_light() -> None:
    statement = (
        "from cirrus_api.app import create_app, handler, build_dispatcher\n"
        "from cirrus_common.settings import Settings\n"
        "s = Settings(auth_enabled=False)\n"
        "create_app(s, build_dispatcher(s)).openapi()\n"
    )
    assert _loaded_after(statement) == set()


def test_check_detects_a_heavy_import() -> None:
    # The probe itself must be able to fail: importing torch is seen.
    assert _loaded_after("import torch") == {"torch"}
