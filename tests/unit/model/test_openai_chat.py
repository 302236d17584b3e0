"""The OpenAI-schema helper for in-process callers (the local SageMaker stand-in)."""

from __future__ import annotations

import pytest

from cirrus_common.payload import ModelResponse, StreamDelta
from cirrus_model.openai_chat import chat_request, iter_chat, run_chat


def test_translates_openai_fields() -> None:
    request = chat_request(
        "tiny",
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "fox"}],
                },
            ],
            "max_completion_tokens": 7,
            "stop": "\n",
            "temperature": 0,
            "seed": 3,
            "stream": True,
        },
    )
    assert request.op == "chat" and request.stream
    assert request.messages[1].content == "Hi fox"
    assert request.params.max_tokens == 7 and request.params.stop == ("\n",)
    assert request.params.temperature == 0 and request.params.seed == 3


@pytest.mark.usefixtures("registry_env")
def test_run_and_stream() -> None:
    body = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "temperature": 0}
    response = run_chat("tiny", body)
    assert response.ok and response.result is not None and response.result.kind == "generation"
    items = list(iter_chat("tiny", body))
    assert all(isinstance(i, StreamDelta) for i in items[:-1])
    final = items[-1]
    assert isinstance(final, ModelResponse) and final.result == response.result


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}], "temperature": 5},
    ],
)
def test_bad_bodies_are_invalid_request(body: dict[str, object]) -> None:
    response = run_chat("tiny", body)
    assert response.error is not None and response.error.code == "invalid_request"
