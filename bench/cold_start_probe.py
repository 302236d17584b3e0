"""One cold start, run in a fresh process by bench.cold_start. Prints the seconds from
interpreter start to the first completion.

    python -m bench.cold_start_probe engine|floor MODEL_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time

PROMPT = [{"role": "user", "content": "What is a list?"}]


def engine(model_dir: str) -> None:
    models = {"cirrus-demo": {"kind": "generation", "source": model_dir}}
    os.environ["CIRRUS_MODELS"] = json.dumps(models)
    from cirrus_model.app import handler

    body = handler(
        {
            "op": "chat",
            "model": "cirrus-demo",
            "messages": PROMPT,
            "params": {"max_tokens": 1, "temperature": 0},
        }
    )
    assert body["ok"], body


def floor(model_dir: str) -> None:
    """The least any server must do: import, load the same weights, one forward pass."""
    import torch  # noqa: TID251
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: TID251

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    text = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        model(input_ids=ids).logits[:, -1].argmax()


if __name__ == "__main__":
    kind, directory = sys.argv[1], sys.argv[2]
    {"engine": engine, "floor": floor}[kind](directory)
    # Seconds since the process was created (not since this module started running).
    started = float(os.environ["BENCH_SPAWNED_AT"])
    print(json.dumps({"seconds": time.time() - started}))
