"""Under a server many requests interleave: each access line carries its own request id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import httpx

from cirrus_api.app import create_app
from cirrus_api.dispatch import Dispatcher
from cirrus_common.observability import logger
from cirrus_common.payload import ModelRequest, ModelResponse
from cirrus_common.settings import Settings
from tests.fakes import ScriptedBackend


class SlowBackend(ScriptedBackend):
    def run(self, request: ModelRequest) -> ModelResponse:
        time.sleep(0.05)  # long enough for the other requests to interleave
        return super().run(request)


def test_concurrent_requests_log_their_own_correlation_id() -> None:
    app = create_app(Settings(auth_enabled=False), Dispatcher({"lambda": SlowBackend()}))
    stream = io.StringIO()
    copy = logging.StreamHandler(stream)
    copy.setFormatter(logger("cirrus-api").registered_formatter)
    std = logging.getLogger("cirrus-api")
    std.addHandler(copy)
    body = {"model": "cirrus-demo", "messages": [{"role": "user", "content": "x"}]}

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            calls = [client.post("/v1/chat/completions", json=body) for _ in range(20)]
            return list(await asyncio.gather(*calls))

    try:
        responses = asyncio.run(burst())
    finally:
        std.removeHandler(copy)
    sent = {r.headers["x-request-id"] for r in responses}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = {line.get("correlation_id") for line in lines if line.get("message") == "request"}
    assert len(sent) == 20
    assert logged == sent
