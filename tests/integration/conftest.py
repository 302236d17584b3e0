"""The local stack, started once per test session: moto, the Lambda stand-in, the real
ModelFunction handler with the real demo and embedding models, and the API under uvicorn on
a free loopback port. Tests talk to it over HTTP with real clients.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`cirrus ARGS...` in a child process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "cirrus_local.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=check,
    )


def wait_healthy(base_url: str, seconds: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll GET /health until it answers 200 (the stack is ready), or fail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert alive(), "the server exited before it became healthy"
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url} did not become healthy in {seconds:.0f} s")


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
        wait_healthy(base_url, 30)
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
