"""The grid encodings the fused op does not cover, in pure PyTorch: tiny-cuda-nn's
``Tiled`` storage (a level's dense index taken modulo base_resolution^D entries, never
hashed) and grids over 4 input dims. Same layout, positions and interpolation as the
fused op (docs/kernels/hashgrid.md); inputs far outside [0, 1] (cells past the int
range) are not saturated as the fused op does."""

from __future__ import annotations

import torch

# tcnn's coherent-prime hash factors, one per dim
_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
# tcnn's largest resolution per dim count whose dense index fits uint32 (else index 0 / hash)
_MAX_BASES = (0, 0xFFFFFFFF, 0xFFFF, 0x659, 0xFF)
_MASK32 = 0xFFFFFFFF


def _mul32(a: torch.Tensor, b: int) -> torch.Tensor:
    """(a * b) mod 2^32 for int64 ``a`` in [0, 2^32), without int64 overflow."""
    lo, hi = b & 0xFFFF, b >> 16
    return (a * lo + (((a * hi) & 0xFFFF) << 16)) & _MASK32


def level_index(vertex: torch.Tensor, grid_type: str, resolution: int, size: int) -> torch.Tensor:
    """tcnn's grid_index: entry within a level of int64 uint32-valued vertices (..., D)."""
    dims = vertex.shape[-1]
    if resolution <= _MAX_BASES[dims]:
        index, stride = torch.zeros_like(vertex[..., 0]), 1
        for d in range(dims):
            index = (index + _mul32(vertex[..., d], stride)) & _MASK32
            stride *= resolution
    else:
        index, stride = torch.zeros_like(vertex[..., 0]), _MASK32
    if grid_type == "hash" and size < stride:
        index = torch.zeros_like(index)
        for d in range(dims):
            index = index ^ _mul32(vertex[..., d], _PRIMES[d])
    return index % size


def grid_encode(x: torch.Tensor, params: torch.Tensor, layout, grid_type: str, smoothstep: bool) -> torch.Tensor:
    """(N, D) positions -> (N, n_levels * F); ``layout`` gives scales, resolutions, offsets."""
    n, dims = x.shape
    feats = layout.n_features_per_level
    table = params.view(-1, feats)
    bits = torch.tensor([[(k >> d) & 1 for d in range(dims)] for k in range(1 << dims)], device=x.device)
    upper = bits[None].bool()
    outs = []
    for level, scale in enumerate(layout.scales):
        if x.dtype == torch.float64:
            pos = x * scale + 0.5
        else:  # tcnn's fmaf(scale, x, 0.5f): one rounding of the exact value
            pos = (x.double() * scale + 0.5).to(x.dtype)
        lower = torch.floor(pos).detach()
        frac = pos - lower
        if smoothstep:
            frac = frac * frac * (3.0 - 2.0 * frac)
        cell = lower.long() & _MASK32
        vertex = (cell[:, None, :] + bits[None]) & _MASK32  # (N, 2^D, D)
        weight = torch.where(upper, frac[:, None, :], 1.0 - frac[:, None, :]).prod(-1)
        size = layout.offsets[level + 1] - layout.offsets[level]
        index = level_index(vertex, grid_type, layout.resolutions[level], size) + layout.offsets[level]
        outs.append((weight[..., None] * table[index]).sum(1))
    return torch.cat(outs, dim=1) if outs else x.new_zeros(n, 0)
