"""The OpenAI surface with a scripted backend: shapes, streaming, auth, limits, headers."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cirrus_api.backends.base import BackendUnavailableError
from cirrus_common.payload import ModelRequest, ModelResponse
from tests.fakes import ScriptedBackend

USER = [{"role": "user", "content": "hi"}]


def test_chat_completion_shape(client: TestClient, backend: ScriptedBackend) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "cirrus-demo",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hello "},
                        {"type": "text", "text": "you"},
                    ],
                },
            ],
            "max_completion_tokens": 9,
            "temperature": 0,
            "stop": "\n",
            "seed": 3,
            "n": 2,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "cirrus-demo"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    assert response.headers["x-cirrus-route"] == "lambda"
    assert response.headers["x-cirrus-route-reason"]
    sent = backend.calls[0]
    assert sent.messages[1].content == "Hello you"  # text parts joined
    assert sent.params.max_tokens == 9 and sent.params.temperature == 0.0
    assert sent.params.stop == ("\n",) and sent.params.seed == 3 and sent.params.n == 2


def test_default_max_tokens_as_openai(client: TestClient, backend: ScriptedBackend) -> None:
    client.post("/v1/chat/completions", json={"model": "cirrus-demo", "messages": USER})
    client.post("/v1/completions", json={"model": "cirrus-demo", "prompt": "a"})
    chat, completion = backend.calls
    assert chat.params.max_tokens is None  # up to the rest of the context
    assert completion.params.max_tokens == 16  # the legacy completions default


def test_routes_without_v1_prefix(client: TestClient) -> None:
    assert client.get("/models").json() == client.get("/v1/models").json()
    response = client.post("/chat/completions", json={"model": "cirrus-demo", "messages": USER})
    assert response.status_code == 200


def test_completions_fan_out_prompts(client: TestClient, backend: ScriptedBackend) -> None:
    response = client.post(
        "/v1/completions", json={"model": "cirrus-demo", "prompt": ["a", "b"], "n": 2}
    )
    body = response.json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert len(body["choices"]) == 4
    assert backend.calls[0].prompts == ("a", "b")


def test_embeddings_float_and_base64(client: TestClient) -> None:
    floats = client.post(
        "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["a", "b"]}
    ).json()
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert floats["data"][0]["embedding"] == [1.0, 0.0, 0.5]
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    packed = client.post(
        "/v1/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": [1, 2, 3], "encoding_format": "base64"},
    ).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack("<3f", raw)) == [1.0, 0.0, 0.5]


def test_models(client: TestClient) -> None:
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list"
    ids = {m["id"] for m in listed["data"]}
    assert {"cirrus-demo", "all-MiniLM-L6-v2"} <= ids
    one = client.get("/v1/models/cirrus-demo").json()
    assert one["object"] == "model" and one["id"] == "cirrus-demo"
    missing = client.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def _events(text: str) -> list[Any]:
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_stream_framing_with_usage(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "cirrus-demo",
            "messages": USER,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there "
    last_content = [c for c in chunks if c["choices"]][-1]
    assert last_content["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 9
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1


def test_stream_error_after_start_is_an_event() -> None:
    from cirrus_api.app import create_app
    from cirrus_api.dispatch import Dispatcher
    from cirrus_common.settings import Settings

    class Broken(ScriptedBackend):
        def stream(self, request: ModelRequest) -> Any:
            yield from list(super().stream(request))[:1]
            raise RuntimeError("connection lost")

    app = create_app(Settings(auth_enabled=False), Dispatcher({"lambda": Broken()}))
    response = TestClient(app).post(
        "/v1/chat/completions", json={"model": "cirrus-demo", "messages": USER, "stream": True}
    )
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["type"] == "server_error"
    assert "connection lost" not in response.text  # nothing internal leaks


def test_model_error_before_any_text_is_a_plain_status_when_streaming(
    make_client: Any, backend: ScriptedBackend
) -> None:
    too_long = ModelResponse.failure("context_length_exceeded", "prompt is 900 tokens", "messages")
    backend.stream = lambda request: iter([too_long])  # type: ignore[method-assign]
    response = make_client().post(
        "/v1/chat/completions", json={"model": "cirrus-demo", "messages": USER, "stream": True}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_backend_unavailable_is_503_with_retry_after(
    make_client: Any, backend: ScriptedBackend
) -> None:
    backend.fail = lambda _req: BackendUnavailableError("lambda", "throttled", retry_after=2)
    client = make_client()
    for stream in (False, True):
        response = client.post(
            "/v1/chat/completions",
            json={"model": "cirrus-demo", "messages": USER, "stream": stream},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.json()["error"]["type"] == "server_error"


def test_unhandled_error_is_a_clean_500(make_client: Any, backend: ScriptedBackend) -> None:
    backend.fail = lambda _req: KeyError("secret internal detail")
    response = make_client().post(
        "/v1/chat/completions", json={"model": "cirrus-demo", "messages": USER}
    )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "secret internal detail" not in response.text
    assert response.headers["x-request-id"]


class Keys:
    def verify(self, plaintext: str) -> object | None:
        return object() if plaintext == "sk-good" else None


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer", 401),
        ("Basic sk-good", 401),
        ("Bearer sk-bad", 401),
        ("Bearer sk-good", 200),
        ("bearer sk-good", 200),
    ],
)
def test_auth(make_client: Any, header: str | None, status: int) -> None:
    client = make_client(verifier=Keys(), auth_enabled=True)
    headers = {"authorization": header} if header else {}
    response = client.get("/v1/models", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/health").status_code == 200  # never needs a key


def test_head_is_get_without_the_body(client: TestClient) -> None:
    for path in ("/health", "/v1/models"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        assert head.headers["x-request-id"]


def test_an_unreachable_keys_table_is_503_not_500(make_client: Any) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def verify(self, plaintext: str) -> object | None:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")

    client = make_client(verifier=Down(), auth_enabled=True)
    response = client.get("/v1/models", headers={"authorization": "Bearer sk-x"})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_auth_off_accepts_any_key(client: TestClient) -> None:
    assert client.get("/v1/models", headers={"authorization": "Bearer anything"}).status_code == 200


def test_rate_limit_answers_429_with_retry_after(make_client: Any) -> None:
    client = make_client(rate_limit_rps=0.5, rate_limit_burst=2)
    headers = {"authorization": "Bearer a"}
    statuses = [client.get("/v1/models", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/v1/models", headers=headers)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    # Another caller has its own bucket.
    assert client.get("/v1/models", headers={"authorization": "Bearer b"}).status_code == 200
