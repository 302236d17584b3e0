"""Every kind of bad input answers 4xx in OpenAI's error shape, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fakes import ScriptedBackend

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
USER = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "cirrus-demo", "messages": USER, **fields}


# (case id, path, body: dict or raw bytes, status, expected param or None, expected code or None)
CASES: list[tuple[str, str, Any, int, str | None, str | None]] = [
    ("malformed json", CHAT, b'{"model": "cirrus-demo", "messages": [}', 400, None, "invalid_json"),
    ("empty body", CHAT, b"", 400, None, None),
    ("json array body", CHAT, b"[]", 400, None, "invalid_json"),
    (
        "NaN literal",
        CHAT,
        b'{"model": "cirrus-demo", "temperature": NaN}',
        400,
        None,
        "invalid_json",
    ),
    (
        "Infinity literal",
        CHAT,
        b'{"model": "cirrus-demo", "top_p": Infinity}',
        400,
        None,
        "invalid_json",
    ),
    (
        "duplicate keys",
        CHAT,
        b'{"model": "a", "model": "cirrus-demo", "messages": []}',
        400,
        None,
        "invalid_json",
    ),
    (
        "lone surrogate",
        CHAT,
        b'{"model": "cirrus-demo", "messages": [{"role": "user", "content": "\\udc00"}]}',
        400,
        None,
        "invalid_json",
    ),
    (
        "invalid utf-8",
        CHAT,
        b'{"model": "cirrus-demo", "messages": [{"role": "user", "content": "\xc3\x28"}]}',
        400,
        None,
        "invalid_json",
    ),
    (
        "deep nesting",
        CHAT,
        b'{"model": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        400,
        None,
        "invalid_json",
    ),
    ("missing messages", CHAT, {"model": "cirrus-demo"}, 400, "messages", "invalid_value"),
    ("empty messages", CHAT, chat(messages=[]), 400, "messages", "invalid_value"),
    ("messages not a list", CHAT, chat(messages="hi"), 400, "messages", "invalid_value"),
    (
        "bad role",
        CHAT,
        chat(messages=[{"role": "robot", "content": "x"}]),
        400,
        "messages.0.role",
        "invalid_value",
    ),
    (
        "content wrong type",
        CHAT,
        chat(messages=[{"role": "user", "content": 5}]),
        400,
        "messages.0.content",
        "invalid_value",
    ),
    (
        "empty content parts",
        CHAT,
        chat(messages=[{"role": "user", "content": []}]),
        400,
        "messages.0.content",
        "invalid_value",
    ),
    (
        "image part",
        CHAT,
        chat(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ]
        ),
        400,
        "messages.0.content.0.type",  # only text parts are served
        "invalid_value",
    ),
    ("missing model", CHAT, {"messages": USER}, 400, "model", "invalid_value"),
    ("model not a string", CHAT, chat(model=7), 400, "model", "invalid_value"),
    ("max_tokens as string", CHAT, chat(max_tokens="100"), 400, "max_tokens", "invalid_value"),
    ("max_tokens as fraction", CHAT, chat(max_tokens=10.5), 400, "max_tokens", "invalid_value"),
    ("max_tokens zero", CHAT, chat(max_tokens=0), 400, "max_tokens", "invalid_value"),
    (
        "max_tokens beyond context",
        CHAT,
        chat(max_tokens=100_000),
        400,
        "max_tokens",
        "context_length_exceeded",
    ),
    (
        "max_completion_tokens string",
        CHAT,
        chat(max_completion_tokens="5"),
        400,
        "max_completion_tokens",
        "invalid_value",
    ),
    ("temperature too high", CHAT, chat(temperature=2.5), 400, "temperature", "invalid_value"),
    ("temperature as string", CHAT, chat(temperature="0.5"), 400, "temperature", "invalid_value"),
    ("temperature as bool", CHAT, chat(temperature=True), 400, "temperature", "invalid_value"),
    ("top_p zero", CHAT, chat(top_p=0), 400, "top_p", "invalid_value"),
    ("n zero", CHAT, chat(n=0), 400, "n", "invalid_value"),
    ("n too large", CHAT, chat(n=1000), 400, "n", "invalid_value"),
    ("too many stops", CHAT, chat(stop=["a", "b", "c", "d", "e"]), 400, None, "invalid_value"),
    ("empty stop", CHAT, chat(stop=""), 400, None, "invalid_value"),
    ("stop wrong type", CHAT, chat(stop=5), 400, "stop", "invalid_value"),
    ("seed as string", CHAT, chat(seed="1"), 400, "seed", "invalid_value"),
    ("seed beyond 64 bits", CHAT, chat(seed=2**64), 400, "seed", "invalid_value"),
    ("seed below int64", CHAT, chat(seed=-(2**63) - 1), 400, "seed", "invalid_value"),
    ("logit_bias", CHAT, chat(logit_bias={"50256": -100}), 400, "logit_bias", "invalid_value"),
    ("top_logprobs", CHAT, chat(top_logprobs=5), 400, "top_logprobs", "invalid_value"),
    ("stream as string", CHAT, chat(stream="yes"), 400, "stream", "invalid_value"),
    (
        "stream_options without stream",
        CHAT,
        chat(stream_options={"include_usage": True}),
        400,
        None,
        "invalid_value",
    ),
    (
        "presence penalty range",
        CHAT,
        chat(presence_penalty=3),
        400,
        "presence_penalty",
        "invalid_value",
    ),
    (
        "frequency penalty type",
        CHAT,
        chat(frequency_penalty="0"),
        400,
        "frequency_penalty",
        "invalid_value",
    ),
    ("logprobs requested", CHAT, chat(logprobs=True), 400, None, "invalid_value"),
    ("tools requested", CHAT, chat(tools=[{"type": "function"}]), 400, None, "invalid_value"),
    (
        "json response format",
        CHAT,
        chat(response_format={"type": "json_object"}),
        400,
        "response_format.type",
        "invalid_value",
    ),
    ("unknown model", CHAT, chat(model="gpt-17"), 404, "model", "model_not_found"),
    (
        "chat on embedding model",
        CHAT,
        chat(model="all-MiniLM-L6-v2"),
        400,
        "model",
        "model_not_supported",
    ),
    ("prompt missing", COMPLETIONS, {"model": "cirrus-demo"}, 400, "prompt", "invalid_value"),
    (
        "prompt wrong type",
        COMPLETIONS,
        {"model": "cirrus-demo", "prompt": 12},
        400,
        "prompt",
        "invalid_value",
    ),
    (
        "prompt list too long",
        COMPLETIONS,
        {"model": "cirrus-demo", "prompt": ["a"] * 20},
        400,
        None,
        "invalid_value",
    ),
    (
        "suffix",
        COMPLETIONS,
        {"model": "cirrus-demo", "prompt": "a", "suffix": "b"},
        400,
        None,
        "invalid_value",
    ),
    (
        "echo",
        COMPLETIONS,
        {"model": "cirrus-demo", "prompt": "a", "echo": True},
        400,
        None,
        "invalid_value",
    ),
    (
        "embedding input missing",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2"},
        400,
        "input",
        "invalid_value",
    ),
    (
        "embedding input empty",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": []},
        400,
        None,
        "invalid_value",
    ),
    (
        "embedding input empty string",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": ""},
        400,
        None,
        "invalid_value",
    ),
    (
        "embedding empty token list",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": [[]]},
        400,
        None,
        "invalid_value",
    ),
    (
        "embedding negative token",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": [-1]},
        400,
        None,
        "invalid_value",
    ),
    (
        "embedding input number",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": 3.5},
        400,
        "input",
        "invalid_value",
    ),
    (
        "embedding bad format",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": "a", "encoding_format": "hex"},
        400,
        "encoding_format",
        "invalid_value",
    ),
    (
        "embedding dimensions zero",
        EMBEDDINGS,
        {"model": "all-MiniLM-L6-v2", "input": "a", "dimensions": 0},
        400,
        "dimensions",
        "invalid_value",
    ),
    (
        "embeddings on chat model",
        EMBEDDINGS,
        {"model": "cirrus-demo", "input": "a"},
        400,
        "model",
        "model_not_supported",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input(
    client: TestClient,
    backend: ScriptedBackend,
    path: str,
    body: Any,
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert backend.calls == []  # nothing invalid reaches a model


def test_body_over_the_cap_is_413_before_parsing(make_client: Any) -> None:
    client = make_client(max_body_bytes=2048)
    body = b'{"model": "cirrus-demo", "messages": [' + b"x" * 4096  # not even JSON
    response = client.post(CHAT, content=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nowhere", 404),
        ("DELETE", "/v1/models", 405),
        ("GET", CHAT, 405),
        ("POST", CHAT + "/", 404),  # no redirect: it would lose API Gateway's stage prefix
    ],
)
def test_unknown_routes_and_methods(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-request-id"]


def test_unknown_fields_are_ignored(client: TestClient, backend: ScriptedBackend) -> None:
    response = client.post(CHAT, json=chat(some_future_field={"x": 1}, metadata={"a": "b"}))
    assert response.status_code == 200
    assert len(backend.calls) == 1


@pytest.mark.parametrize(
    ("path", "body", "param", "fragment"),
    [
        (EMBEDDINGS, {"model": "all-MiniLM-L6-v2", "input": ["a"] * 3000}, "input", "at most 2048"),
        (EMBEDDINGS, {"model": "all-MiniLM-L6-v2", "input": ["a", ""]}, "input.1", "at least 1"),
        (CHAT, chat(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
    ],
)
def test_union_fields_report_the_branch_that_matched(
    client: TestClient, path: str, body: Any, param: str, fragment: str
) -> None:
    """Not "should be a valid string" from a branch whose type never applied."""
    error = client.post(path, json=body).json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]
