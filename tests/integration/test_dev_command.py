"""`cirrus dev`, the README's main command, as a user runs it: a child process on a port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import free_port, run_cli, wait_healthy


@pytest.fixture
def dev_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cirrus_local.cli", "dev", "--port", str(port), "--auth"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:  # a cold cache builds the demo model first
            wait_healthy(url, 600, alive=lambda: process.poll() is None)
        except AssertionError:
            process.kill()
            raise AssertionError(process.communicate(timeout=10)[0]) from None
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def cirrus(*args: str) -> str:
    return run_cli(*args).stdout


def test_dev_with_keys_serves_chat_and_stops_cleanly_on_ctrl_c(
    dev_server: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = dev_server
    created = cirrus("keys", "create", "tester", "--local")  # as the README writes it
    key = created.split("api key (shown once, store it now): ")[1].strip()
    key_id = created.split("key id: ")[1].split()[0]
    assert key.startswith("sk-cirrus-")
    assert key_id in cirrus("keys", "--local", "list")
    chat = {
        "model": "cirrus-demo",
        "messages": [{"role": "user", "content": "What is a module?"}],
        "max_tokens": 16,
        "temperature": 0,  # greedy: the toy model's answer is the same every run
    }

    def ask(token: str) -> httpx.Response:
        return httpx.post(
            f"{url}/v1/chat/completions",
            json=chat,
            headers={"authorization": f"Bearer {token}"},
            timeout=120,
        )

    response = ask(key)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    assert ask("sk-cirrus-not-a-key").status_code == 401
    assert f"revoked {key_id}" in cirrus("keys", "--local", "revoke", key_id)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    output = process.stdout.read() if process.stdout else ""
    assert "curl" in output and "/v1/chat/completions" in output  # lines to try
    assert "Traceback" not in output
    assert key not in output  # keys never reach the logs
    gone = run_cli("keys", "list", "--local", check=False)
    assert gone.returncode == 2 and "no local stack is running" in gone.stderr


def test_dev_reports_a_taken_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("dev", "--port", str(port), check=False)
    assert done.returncode == 2
    assert f"Port {port}" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr
