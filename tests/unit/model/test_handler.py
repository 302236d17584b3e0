"""cirrus_model.app: payload validation, model lookup and the error mapping, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cirrus_common.payload import ModelResponse
from cirrus_model import app, loader, service
from cirrus_model.errors import InvalidRequest


def chat(model: str = "tiny", **fields: Any) -> dict[str, Any]:
    return {
        "op": "chat",
        "model": model,
        "request_id": "r-1",
        "messages": [{"role": "user", "content": "Hello fox"}],
        "params": {"max_tokens": 5, "temperature": 0},
        **fields,
    }


def error_of(body: dict[str, Any]) -> tuple[str, str]:
    parsed = ModelResponse.model_validate(body)
    assert not parsed.ok and parsed.error is not None
    return parsed.error.code, parsed.error.message


@pytest.mark.usefixtures("registry_env")
def test_chat_success_and_token_counts() -> None:
    body = app.handler(chat(params={"max_tokens": 6, "temperature": 0, "n": 2}), None)
    parsed = ModelResponse.model_validate(body)
    assert parsed.ok and parsed.result is not None and parsed.result.kind == "generation"
    assert [c.index for c in parsed.result.choices] == [0, 1]
    assert parsed.result.prompt_tokens > 0
    assert 2 <= parsed.result.completion_tokens <= 12
    json.dumps(body)  # the handler's return value is JSON-ready


@pytest.mark.usefixtures("registry_env")
def test_completion_choices_are_prompt_major() -> None:
    body = app.handler(
        {
            "op": "completion",
            "model": "tiny",
            "prompts": ["The quick", "A dict"],
            "params": {"max_tokens": 3, "n": 2, "seed": 3},
        }
    )
    parsed = ModelResponse.model_validate(body)
    assert parsed.result is not None and parsed.result.kind == "generation"
    assert [c.index for c in parsed.result.choices] == [0, 1, 2, 3]


@pytest.mark.usefixtures("registry_env")
def test_stream_emits_deltas_then_the_final_response() -> None:
    lines = [json.loads(line) for line in b"".join(app.stream(chat())).splitlines()]
    *deltas, final = lines
    assert all(d["type"] == "delta" and d["index"] == 0 for d in deltas)
    response = ModelResponse.model_validate(final)
    assert response.ok and response.result is not None and response.result.kind == "generation"
    assert "".join(d["text"] for d in deltas) == response.result.choices[0].text


@pytest.mark.usefixtures("registry_env")
@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("not an object", "invalid_request"),
        ({"op": "chat"}, "invalid_request"),
        (chat(params={"max_tokens": 0}), "invalid_request"),
        (chat(extra_field=1), "invalid_request"),
        (chat(messages=[]), "invalid_request"),
        (chat(model="gpt-17"), "model_not_found"),
        (chat(model="all-MiniLM-L6-v2"), "model_not_found"),
        ({"op": "embeddings", "model": "tiny", "inputs": ["x"]}, "model_not_found"),
        (chat(params={"max_tokens": 64}), "context_length_exceeded"),
        (chat(model="missing"), "model_load_failed"),
        (chat(model="nobuiltin"), "model_load_failed"),
    ],
)
def test_errors_are_structured(event: Any, code: str) -> None:
    assert error_of(app.handler(event, None))[0] == code


@pytest.mark.usefixtures("registry_env")
def test_context_error_names_both_numbers() -> None:
    code, message = error_of(app.handler(chat(params={"max_tokens": 60}), None))
    assert code == "context_length_exceeded"
    assert "64" in message and "60" in message


def test_directory_without_safetensors_is_refused(
    registry_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_dir: Path
) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / name).write_bytes((tiny_dir / name).read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    models = {**registry_env, "pickled": {"kind": "generation", "source": str(pickled)}}
    monkeypatch.setenv("CIRRUS_MODELS", json.dumps(models))
    from cirrus_common.settings import get_settings

    get_settings.cache_clear()
    code, message = error_of(app.handler(chat(model="pickled"), None))
    assert code == "model_load_failed" and "safetensors" in message


def test_corrupt_weights_are_a_load_failure(
    registry_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_dir: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    models = {**registry_env, "broken": {"kind": "generation", "source": str(broken)}}
    monkeypatch.setenv("CIRRUS_MODELS", json.dumps(models))
    from cirrus_common.settings import get_settings

    get_settings.cache_clear()
    code, message = error_of(app.handler(chat(model="broken"), None))
    assert code == "model_load_failed"
    assert str(broken) not in message  # no paths leak to the client


@pytest.mark.usefixtures("registry_env")
@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (MemoryError(), "out_of_memory"),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB"),
            "out_of_memory",
        ),
        (ValueError("secret internal detail /opt/x"), "internal_error"),
    ],
)
def test_unexpected_exceptions_are_mapped(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, code: str
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise exc

    monkeypatch.setattr(loader, "get_model", boom)
    got, message = error_of(app.handler(chat(), None))
    assert got == code
    assert "secret" not in message


def test_loads_once_and_reuses(registry_env: dict[str, Any]) -> None:
    app.handler(chat(), None)
    first = loader._models["tiny"]
    app.handler(chat(), None)
    assert loader._models["tiny"] is first


def test_concurrent_first_requests_load_once(
    registry_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    calls = []
    real_load = loader._load

    def counting_load(*args: Any) -> Any:
        calls.append(1)
        return real_load(*args)

    monkeypatch.setattr(loader, "_load", counting_load)
    threads = [threading.Thread(target=app.handler, args=(chat(), None)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_parse_request_rejects_wrong_version() -> None:
    with pytest.raises(InvalidRequest):
        service.parse_request({**chat(), "v": 2})
