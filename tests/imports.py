"""Which heavy ML modules a statement imports, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers")


def heavy_modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    return {m for m in out.splitlines()[-1].split(",") if m} if out else set()
