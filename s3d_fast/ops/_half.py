"""float16 and bfloat16 inputs of the fused ops: the kernels run in float32
(so every sum accumulates in float32) on float32 copies, and the outputs are
cast back to the input's dtype. Gradients flow through both casts."""

from __future__ import annotations

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def is_half(x) -> bool:
    return isinstance(x, torch.Tensor) and x.dtype in HALF_DTYPES


def widen(op: str, names: tuple, tensors: tuple) -> list:
    """float32 copies of ``tensors`` (None stays None), which must all share the
    first one's half dtype."""
    dtype = tensors[0].dtype
    for name, t in zip(names, tensors):
        if isinstance(t, torch.Tensor) and t.dtype != dtype:
            raise TypeError(f"{op}: {name} is {t.dtype} but {names[0]} is {dtype}")
    return [t.float() if isinstance(t, torch.Tensor) else t for t in tensors]


def narrow(outputs, dtype: torch.dtype):
    """The floating outputs (a tensor or a tuple of them) cast to ``dtype``."""
    if isinstance(outputs, torch.Tensor):
        return outputs.to(dtype) if outputs.is_floating_point() else outputs
    return type(outputs)(narrow(o, dtype) for o in outputs)
