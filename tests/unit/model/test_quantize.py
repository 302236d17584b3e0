"""Conv1D → Linear is exact; int8 dynamic quantisation keeps the model working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch  # noqa: TID251 - model tests need the real thing

from cirrus_common.payload import GenerationParams
from cirrus_model.engine import GenerationEngine
from cirrus_model.quantize import conv1d_to_linear, quantize_int8


def load(tiny_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: TID251

    model: Any = AutoModelForCausalLM.from_pretrained(str(tiny_dir), use_safetensors=True)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(tiny_dir))


def test_conv1d_to_linear_is_exact(tiny_dir: Path) -> None:
    model, _ = load(tiny_dir)
    ids = torch.tensor([[5, 9, 40, 77, 3]])
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        assert conv1d_to_linear(model) == 2 * 4  # c_attn, c_proj, c_fc, c_proj per layer
        after = model(input_ids=ids).logits
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)


def test_int8_model_generates(tiny_dir: Path) -> None:
    model, tokenizer = load(tiny_dir)
    quantised = quantize_int8(model)
    names = {type(m).__name__ for m in quantised.modules()}
    assert "DynamicQuantizedLinear" in names or "Linear" in names
    assert not any(type(m).__name__ == "Conv1D" for m in quantised.modules())
    engine = GenerationEngine(quantised, tokenizer, context_length=64)
    run = engine.start(engine.encode_prompt("The fox"), GenerationParams(max_tokens=5, seed=0))
    assert run.run().choices[0].tokens >= 1
