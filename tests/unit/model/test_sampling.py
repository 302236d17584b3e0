"""Token selection: OpenAI's penalty formula, exact top-p nucleus, seeded reproducibility."""

from __future__ import annotations

import math
from collections import Counter

import torch  # noqa: TID251 - model tests need the real thing

from cirrus_common.payload import GenerationParams
from cirrus_model.sampling import TokenSampler


def logits_for(probs: list[float]) -> torch.Tensor:
    return torch.tensor([[math.log(p) for p in probs]])


def test_top_p_keeps_the_smallest_nucleus_in_proportion() -> None:
    sampler = TokenSampler(GenerationParams(temperature=1.0, top_p=0.7, seed=0), 1, 4)
    logits = logits_for([0.5, 0.3, 0.15, 0.05])
    counts = Counter(int(sampler(logits)[0]) for _ in range(4000))
    assert set(counts) == {0, 1}
    assert abs(counts[0] / 4000 - 0.625) < 0.03


def test_top_p_on_a_flat_distribution_falls_back_to_a_full_sort() -> None:
    vocab = 3000  # more than the topk candidates, mass spread evenly
    sampler = TokenSampler(GenerationParams(temperature=1.0, top_p=0.5, seed=1), 1, vocab)
    logits = torch.linspace(0.0, 0.01, vocab).unsqueeze(0)  # slightly favours high ids
    picks = [int(sampler(logits)[0]) for _ in range(500)]
    assert min(picks) >= vocab // 2 - 50  # only the more likely half is ever drawn
    assert len(set(picks)) > 300


def test_sampling_without_top_p_follows_the_distribution() -> None:
    sampler = TokenSampler(GenerationParams(temperature=1.0, seed=2), 1, 3)
    logits = logits_for([0.7, 0.2, 0.1])
    counts = Counter(int(sampler(logits)[0]) for _ in range(5000))
    assert abs(counts[0] / 5000 - 0.7) < 0.03
    assert abs(counts[2] / 5000 - 0.1) < 0.02


def test_same_seed_same_draws() -> None:
    logits = torch.randn(2, 50)
    a = TokenSampler(GenerationParams(seed=9, top_p=0.9), 2, 50)
    b = TokenSampler(GenerationParams(seed=9, top_p=0.9), 2, 50)
    assert [a(logits).tolist() for _ in range(20)] == [b(logits).tolist() for _ in range(20)]


def test_openai_penalty_formula() -> None:
    # Token 0 leads by 1.0; once sampled twice, frequency 0.3 * 2 + presence 0.5 = 1.1 > 1.0.
    params = GenerationParams(temperature=0.0, frequency_penalty=0.3, presence_penalty=0.5)
    sampler = TokenSampler(params, 1, 3)
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    picks = [int(sampler(logits)[0]) for _ in range(4)]
    # after 1 pick: 2.0 - 0.8 = 1.2 > 1.0 → 0 again; after 2: 2.0 - 1.1 = 0.9 < 1.0 → 1
    assert picks[:3] == [0, 0, 1]


def test_negative_penalties_encourage_repeats() -> None:
    params = GenerationParams(temperature=0.0, presence_penalty=-2.0)
    sampler = TokenSampler(params, 1, 3)
    assert [int(sampler(torch.tensor([[0.0, 1.0, 0.5]]))[0]) for _ in range(3)] == [1, 1, 1]
