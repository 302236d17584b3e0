"""The decode loop on a tiny random GPT-2 (real transformers code path) and a scripted LM."""

from __future__ import annotations

from typing import Any

import pytest

from cirrus_common.payload import GenerationParams
from cirrus_model.engine import GenerationEngine
from cirrus_model.errors import ContextLengthExceeded
from tests.unit.model.tiny import ScriptedLM

CHAT = [{"role": "user", "content": "Tell me about the fox."}]


def texts(run: Any) -> list[str]:
    return [c.text for c in run.choices]


def test_greedy_is_deterministic(engine: GenerationEngine) -> None:
    ids = engine.encode_chat(CHAT)
    params = GenerationParams(max_tokens=12, temperature=0.0)
    first = engine.start(ids, params).run()
    second = engine.start(ids, params).run()
    assert texts(first) == texts(second)
    assert first.choices[0].tokens > 0


def test_seed_reproduces_samples_and_other_seeds_differ(engine: GenerationEngine) -> None:
    ids = engine.encode_chat(CHAT)
    runs = [
        texts(engine.start(ids, GenerationParams(max_tokens=12, seed=s, n=2)).run())
        for s in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_n_choices_are_indexed_and_distinct(engine: GenerationEngine) -> None:
    ids = engine.encode_prompt("The quick brown")
    run = engine.start(ids, GenerationParams(max_tokens=10, n=4, seed=1), first_index=4).run()
    assert [c.index for c in run.choices] == [4, 5, 6, 7]
    assert len(set(texts(run))) > 1
    assert run.completion_tokens == sum(c.tokens for c in run.choices)


def test_max_tokens_gives_length(engine: GenerationEngine) -> None:
    run = engine.start(engine.encode_prompt("A dict"), GenerationParams(max_tokens=3, seed=0))
    run.run()
    choice = run.choices[0]
    assert choice.finish_reason in ("length", "stop")
    if choice.finish_reason == "length":
        assert choice.tokens == 3


def test_context_length_is_enforced_before_generating(engine: GenerationEngine) -> None:
    ids = engine.encode_prompt("Python lists are mutable sequences.")
    n = len(ids)
    engine.start(ids, GenerationParams(max_tokens=64 - n))  # exactly fits
    with pytest.raises(ContextLengthExceeded) as info:
        engine.start(ids, GenerationParams(max_tokens=65 - n))
    assert "64" in info.value.message and str(65) in info.value.message
    with pytest.raises(ContextLengthExceeded, match="prompt alone"):
        engine.start(list(range(70)), GenerationParams(max_tokens=1))


def test_without_max_tokens_the_rest_of_the_context_is_the_limit(
    engine: GenerationEngine,
) -> None:
    ids = engine.encode_prompt("Python lists are mutable sequences.")
    run = engine.start(ids, GenerationParams(temperature=0.0))
    assert run.max_tokens == 64 - len(ids)
    run.run()
    assert run.choices[0].tokens <= 64 - len(ids)


def test_a_prompt_too_long_names_the_field_it_came_from(engine: GenerationEngine) -> None:
    with pytest.raises(ContextLengthExceeded) as info:
        engine.start(list(range(70)), GenerationParams(), prompt_param="prompt")
    assert info.value.param == "prompt"


def test_penalties_change_greedy_output(engine: GenerationEngine) -> None:
    ids = engine.encode_prompt("The")
    plain = engine.start(ids, GenerationParams(max_tokens=20, temperature=0)).run()
    penalised = engine.start(
        ids, GenerationParams(max_tokens=20, temperature=0, frequency_penalty=2.0)
    ).run()
    presence = engine.start(
        ids, GenerationParams(max_tokens=20, temperature=0, presence_penalty=2.0)
    ).run()
    assert texts(plain) != texts(penalised)
    assert texts(plain) != texts(presence)


def test_stream_deltas_concatenate_to_final_text(engine: GenerationEngine) -> None:
    ids = engine.encode_chat(CHAT)
    run = engine.start(ids, GenerationParams(max_tokens=20, n=3, seed=5, stop=("e",)))
    pieces: dict[int, str] = {0: "", 1: "", 2: ""}
    for index, delta in run:
        pieces[index] += delta
    assert [pieces[i] for i in range(3)] == texts(run)
    assert all("e" not in t for t in texts(run))


def test_empty_prompt_still_generates(engine: GenerationEngine) -> None:
    run = engine.start(engine.encode_prompt(""), GenerationParams(max_tokens=2, seed=0)).run()
    assert run.prompt_tokens == 1


# --- exact behaviour with a scripted model -------------------------------------------------


def scripted(tiny_loaded: tuple[Any, Any], words: list[str], eos: bool) -> GenerationEngine:
    _, tokenizer = tiny_loaded
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    script = [t for w in words for t in tokenizer(w, add_special_tokens=False)["input_ids"]]
    if eos:
        script.append(eos_id)
    model = ScriptedLM(script, vocab_size=len(tokenizer), eos_id=eos_id)
    return GenerationEngine(model, tokenizer, context_length=64)


def test_eos_finishes_with_stop_and_counts_the_token(tiny_loaded: tuple[Any, Any]) -> None:
    engine = scripted(tiny_loaded, ["The end."], eos=True)
    run = engine.start([1, 2], GenerationParams(max_tokens=30, temperature=0)).run()
    choice = run.choices[0]
    assert (choice.text, choice.finish_reason) == ("The end.", "stop")
    assert choice.tokens == len(engine.encode_prompt("The end.")) + 1


def test_stop_string_trims_text(tiny_loaded: tuple[Any, Any]) -> None:
    engine = scripted(tiny_loaded, ["The quick", " brown fox"], eos=False)
    run = engine.start([1], GenerationParams(max_tokens=30, stop=("own",), temperature=0))
    deltas = [d for _, d in run]
    assert run.choices[0].text == "The quick br"
    assert run.choices[0].finish_reason == "stop"
    assert "".join(deltas) == "The quick br"


def test_multibyte_text_streams_intact(tiny_loaded: tuple[Any, Any]) -> None:
    engine = scripted(tiny_loaded, ["Café 20€ 😀 ok"], eos=True)
    run = engine.start([1], GenerationParams(max_tokens=40, temperature=0))
    deltas = [d for _, d in run]
    assert "".join(deltas) == run.choices[0].text == "Café 20€ 😀 ok"
    assert all("\ufffd" not in d for d in deltas)


def test_fallback_chat_template_for_models_without_one(tiny_loaded: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_loaded
    engine = GenerationEngine(model, tokenizer, context_length=64)
    tokenizer_template = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        text = engine.decode(engine.encode_chat(CHAT))
    finally:
        tokenizer.chat_template = tokenizer_template
    assert text == "User: Tell me about the fox.\nAssistant:"


def test_a_template_that_refuses_the_conversation_is_the_requests_error(
    tiny_loaded: tuple[Any, Any],
) -> None:
    import copy

    from cirrus_model.errors import InvalidRequest

    model, tokenizer = tiny_loaded
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    engine = GenerationEngine(model, strict, context_length=64)
    with pytest.raises(InvalidRequest, match="System role not supported") as info:
        engine.encode_chat([{"role": "system", "content": "Be brief."}, *CHAT])
    assert info.value.param == "messages"
    assert engine.encode_chat(CHAT)  # the same template takes what it allows
