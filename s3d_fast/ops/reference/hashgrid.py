"""Pure-PyTorch multi-resolution hash-grid encoding: tiny-cuda-nn's semantics,
readable and vectorised over points (the nerfstudio ``implementation="torch"``
style), one level at a time."""

from __future__ import annotations

import torch

from ..hashgrid import check_encode_inputs
from ..hashgrid_config import HashGridConfig

_PRIMES = (1, 2654435761, 805459861)
_MASK32 = 0xFFFFFFFF
_MIN_CELL = -(2**31)


def _max_cell(dtype: torch.dtype) -> float:
    """The largest cell the kernel converts to int: the largest float below 2^31 in float32."""
    return 2147483647.0 if dtype == torch.float64 else 2147483520.0


def _mul32(a: torch.Tensor, b: int) -> torch.Tensor:
    """(a * b) mod 2^32 for int64 a in [0, 2^32), without int64 overflow."""
    lo, hi = b & 0xFFFF, b >> 16
    return (a * lo + (((a * hi) & 0xFFFF) << 16)) & _MASK32


def hashgrid_encode(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig | None = None, **options
) -> torch.Tensor:
    """Same signature and result as :func:`s3d_fast.ops.hashgrid_encode`."""
    config = HashGridConfig.coerce(config, options)
    dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    x2d, layout, lead = check_encode_inputs("reference.hashgrid_encode", x, params, config, dtypes)
    n, dims = x2d.shape
    feats = config.n_features_per_level
    table = params.view(-1, feats)
    # Corner k of a cell: bit d of k set = upper vertex along axis d.
    bits = torch.tensor([[(k >> d) & 1 for d in range(dims)] for k in range(1 << dims)], device=x.device)
    outs = []
    for level in range(config.n_levels):
        scale = layout.scales[level]
        if x2d.dtype == torch.float64:
            pos = x2d * scale + 0.5
        else:
            # tcnn computes fmaf(scale, x, 0.5f): the exact product plus 0.5,
            # rounded once. The float64 sum is that up to double rounding.
            pos = (x2d.double() * scale + 0.5).to(x2d.dtype)
        lower = torch.floor(pos)
        frac = pos - lower  # d/dx = scale; floor has no gradient
        # Past the int range and at +-inf the cell saturates with weight 0 and
        # no gradient; a NaN coordinate keeps a NaN weight at cell 0 (as the kernel).
        nan = torch.isnan(x2d)
        lower = lower.double()  # holds every cell exactly, also for float16 inputs
        beyond = ~((lower >= _MIN_CELL) & (lower <= _max_cell(x2d.dtype)))
        if bool(beyond.any()):
            saturated = torch.full_like(lower, _max_cell(x2d.dtype)).masked_fill(lower < 0, _MIN_CELL)
            lower = saturated.masked_fill(nan | torch.isnan(pos), 0.0).where(beyond, lower)
            frac = torch.where(nan, x2d, torch.zeros_like(frac)).where(beyond, frac)
        if config.interpolation == "smoothstep":
            frac = frac * frac * (3.0 - 2.0 * frac)
        cell = lower.detach().long() & _MASK32  # (int) then (uint32): negatives wrap
        vertex = (cell[:, None, :] + bits[None]) & _MASK32  # (N, 2^D, D)
        upper = bits[None].bool()
        weight = torch.where(upper, frac[:, None, :], 1.0 - frac[:, None, :]).prod(-1)  # (N, 2^D)
        size = layout.sizes[level]
        if layout.hashed[level]:
            index = torch.zeros_like(vertex[..., 0])
            for d in range(dims):
                index = index ^ _mul32(vertex[..., d], _PRIMES[d])
        else:
            res = layout.resolutions[level]
            index = vertex[..., 0]
            stride = res
            for d in range(1, dims):
                index = (index + _mul32(vertex[..., d], stride)) & _MASK32
                stride = (stride * res) & _MASK32
        index = index % size + layout.offsets[level]
        values = table[index]  # (N, 2^D, F)
        outs.append((weight[..., None] * values).sum(1))
    out = torch.cat(outs, dim=1) if outs else x2d.new_zeros(n, 0)
    return out.view(*lead, layout.n_output_dims)
