"""Tensors for the fuzzing properties (tests/fuzz_ops.py): hypothesis draws the
shape, dtype, layout, scale and a few special values of a tensor, a seeded
generator fills the rest (drawing every element through hypothesis would be
slow), and ``assert_matches`` compares an op's output with its float64 reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

NAN, INF = math.nan, math.inf
HALF = (torch.float16, torch.bfloat16)
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
# Non-finite, huge (beyond float16 and int32), tiny (subnormal) and signed zeros.
SPECIALS = (NAN, INF, -INF, 1e30, -1e30, 3e9, -3e9, 1e-40, 0.0, -0.0)
# Relative tolerance per dtype: float32 accumulation, or one rounding to a half dtype.
RTOL = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 4e-3, torch.bfloat16: 3e-2}


@st.composite
def specials(draw, values=SPECIALS, max_size: int = 3):
    """(flat index, value) pairs to overwrite; the index wraps modulo numel."""
    return draw(st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(values)), max_size=max_size))


def make(shape, dtype, device, gen: torch.Generator, low=0.0, high=1.0, special=(), contiguous=True, normal=False):
    """A tensor of ``shape`` with values uniform in [low, high) (or normal times
    ``high``), ``special`` written over some of them; a strided view when not
    ``contiguous``."""
    shape = tuple(shape)
    values = torch.randn(shape, generator=gen, dtype=torch.float64) * high if normal else None
    if values is None:
        values = torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low
    numel = values.numel()
    for index, value in special:
        if numel:
            values[np.unravel_index(index % numel, shape)] = value
    if contiguous:
        return values.to(device=device, dtype=dtype)
    out = torch.empty(*shape, 2, dtype=dtype, device=device)[..., 0]  # every stride doubled
    out.copy_(values)
    return out


def strided_like(x: torch.Tensor) -> torch.Tensor:
    """A non-contiguous copy of ``x``."""
    out = torch.empty(*x.shape, 2, dtype=x.dtype, device=x.device)[..., 0]
    return out.copy_(x)


def assert_matches(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str, rtol=None):
    """``out`` (in ``dtype``) holds NaN exactly where the float64 ``ref`` does,
    and the rest agrees within the dtype's tolerance, relative to ``ref``'s
    largest finite magnitude."""
    assert isinstance(out, torch.Tensor), f"{what}: got {type(out).__name__}"
    assert out.dtype == dtype, f"{what}: dtype {out.dtype}, expected {dtype}"
    assert tuple(out.shape) == tuple(ref.shape), f"{what}: shape {tuple(out.shape)}, expected {tuple(ref.shape)}"
    o = out.detach().double().cpu()
    r = ref.detach().to(dtype).double().cpu()  # overflows where out's dtype overflows
    nan_o, nan_r = torch.isnan(o), torch.isnan(r)
    assert torch.equal(nan_o, nan_r), (
        f"{what}: NaN at {nan_o.nonzero().flatten().tolist()[:12]} but the reference has NaN at "
        f"{nan_r.nonzero().flatten().tolist()[:12]}"
    )
    o, r = o[~nan_o], r[~nan_r]
    finite = r[torch.isfinite(r)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    rtol = RTOL[dtype] if rtol is None else rtol
    torch.testing.assert_close(o, r, rtol=rtol, atol=rtol * max(scale, 1e-30), msg=lambda m: f"{what}: {m}")


def all_finite(*tensors) -> bool:
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)
