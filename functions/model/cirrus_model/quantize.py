"""Dynamic int8 quantisation of every projection of a causal LM, for CPU decode speed.

Decode on CPU is memory-bound: each token streams every weight once, so int8 weights (4x fewer
bytes than fp32) raise tokens/s. Activations stay float and are quantised per batch on the fly
("dynamic"), so no calibration data is needed.

GPT-2 stores its projections as transformers' Conv1D (a Linear with the weight transposed),
which no quantiser recognises, so those are first rewritten as nn.Linear.

Why torch.ao.quantization.quantize_dynamic and not torchao: torch.ao's eager dynamic path is
deprecated but still ships in torch 2.13 and runs fbgemm int8 GEMMs on x86 CPUs. torchao 0.18
(measured side by side, GPT-2-124M shape, batch-1 greedy decode, 2 vCPUs, no torch.compile):
fp32 20.5 tok/s, torch.ao dynamic int8 118.4, torchao Int8DynamicActivationInt8WeightConfig
42.2, torchao Int8WeightOnlyConfig 11.8. torchao's CPU speed needs torch.compile, which a
Lambda cold start cannot afford, and it is one more large dependency. Revisit when torch.ao is
removed from torch.
"""

from __future__ import annotations

import warnings
from typing import Any


def conv1d_to_linear(model: Any) -> int:
    """Replace every transformers Conv1D in `model` with an equivalent nn.Linear; count them."""
    import torch  # noqa: TID251
    from transformers.pytorch_utils import Conv1D  # noqa: TID251

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                n_in, n_out = child.weight.shape  # Conv1D weight is (in, out)
                linear = torch.nn.Linear(n_in, n_out, bias=child.bias is not None)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        linear.bias.copy_(child.bias)
                setattr(parent, name, linear)
                replaced += 1
    return replaced


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 for every nn.Linear (incl. the LM head); returns the quantised model."""
    import torch  # noqa: TID251

    conv1d_to_linear(model)
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated on every call; see module doc.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic  # noqa: TID251

        return quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
