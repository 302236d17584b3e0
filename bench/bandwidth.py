"""(5) Decode speed as a fraction of the memory-bandwidth bound.

Batch-1 decode reads every weight once per token, so tokens/s can be at most
copy bandwidth / weight bytes per token. Bandwidth is measured here with a large tensor copy
(read + write, well beyond the last-level cache); embedding tables count one row per token.
"""

from __future__ import annotations

from typing import Any


def copy_bandwidth(gib: float = 1.0, repeats: int = 5) -> float:
    """Bytes per second moved by torch's copy (reads + writes)."""
    import time

    import torch  # noqa: TID251

    n = int(gib * (1 << 30)) // 4
    src = torch.ones(n, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # fault the pages in
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - started)
    return 2 * n * 4 / best


def weight_bytes_per_token(model: Any) -> int:
    import torch  # noqa: TID251

    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            continue  # one row per token: negligible
        if hasattr(module, "_packed_params"):
            if not callable(getattr(module, "weight", None)):
                continue  # the packed-params holder inside a quantised Linear
            # dynamic-quantised Linear: int8 weight, fp32 bias
            weight, bias = module.weight(), module.bias()
            total += weight.numel() * weight.element_size()
            total += 0 if bias is None else bias.numel() * bias.element_size()
            continue
        for p in module.parameters(recurse=False):
            total += p.numel() * p.element_size()
    return total


def fraction(tps: float, model: Any, bandwidth: float) -> dict[str, float]:
    per_token = weight_bytes_per_token(model)
    bound = bandwidth / per_token
    return {
        "weight_mib_per_token": per_token / (1 << 20),
        "bound_tps": bound,
        "fraction": tps / bound,
    }
