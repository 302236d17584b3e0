"""Fixtures shared by every test tier."""

from __future__ import annotations

import os

import pytest

from cirrus_local.stack import FAKE_AWS_ENV


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region that can reach only moto or the local stand-ins, and no
    endpoint override left behind by a local stack another test started."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + ["AWS_PROFILE"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
