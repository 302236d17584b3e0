from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The real demo model, built once (about 1.5 minutes on 2 cores) and cached."""
    from cirrus_model.demo_model import ensure_demo_model

    return ensure_demo_model(progress=print)
