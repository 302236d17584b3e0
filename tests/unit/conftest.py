from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cirrus_api.app import create_app
from cirrus_api.dispatch import Dispatcher
from cirrus_common.settings import Settings
from tests.fakes import ScriptedBackend


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def make_client(backend: ScriptedBackend) -> Callable[..., TestClient]:
    def make(verifier: Any = None, **overrides: Any) -> TestClient:
        settings = Settings(**{"auth_enabled": False, **overrides})
        app = create_app(settings, Dispatcher({"lambda": backend}), verifier)
        return TestClient(app, raise_server_exceptions=False)

    return make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
