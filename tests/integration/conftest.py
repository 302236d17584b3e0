"""The local stack, started once per test session: moto, the Lambda stand-in, the real
ModelFunction handler with the real demo and embedding models, and the API under uvicorn on
a free loopback port. Tests talk to it over HTTP with real clients.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from cirrus_local.stack import LocalStack, StackConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningStack:
    stack: LocalStack
    base_url: str
    server: uvicorn.Server


@pytest.fixture(scope="session")
def running_stack() -> Iterator[RunningStack]:
    from cirrus_api.app import build_dispatcher, build_verifier, create_app
    from cirrus_common.settings import get_settings
    from cirrus_model.demo_model import ensure_demo_model

    ensure_demo_model()
    stack = LocalStack(StackConfig(auth_enabled=True)).start()
    try:
        stack.warm_models()
        settings = get_settings()
        app = create_app(settings, build_dispatcher(settings), build_verifier(settings))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the local stack's API did not come up")
        yield RunningStack(stack, base_url, server)
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def api_key(running_stack: RunningStack) -> str:
    from cirrus_common.keys import KeyStore
    from cirrus_common.settings import get_settings

    plaintext, _ = KeyStore(get_settings().keys_table).create("tests")
    return plaintext
