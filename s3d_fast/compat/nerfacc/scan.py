"""nerfacc.scan: per-ray inclusive / exclusive sums and products.

Batched input scans its last dimension (``torch.cumsum`` / ``cumprod``). Packed
input (``packed_info``, or sorted ``indices``) is laid out as a dense (n_rays,
longest ray + 1) table whose first column is the identity, so one cumsum or
cumprod along the rows scans every ray at once and stays inside it; autograd
differentiates it (cumprod's gradient is exact at zeros, which nerfacc's CUDA
exclusive product is not).
"""

from __future__ import annotations

from typing import Optional

import torch

from ._segments import from_packed_info, packed_info_of


def _packed_scan(inputs, packed_info, indices, op, identity: float, inclusive: bool):
    if inputs.dim() != 1:
        raise ValueError(f"packed inputs must be flattened (all_samples,), got shape {tuple(inputs.shape)}")
    if packed_info is None:
        packed_info = packed_info_of(indices)
    seg = from_packed_info(packed_info.to(inputs.device), inputs.numel())
    table = op(seg.dense(inputs, identity, shift=1), dim=1)
    return table[seg.rays, seg.cols + 1] if inclusive else table[seg.rays, seg.cols]


def _exclusive_batched(inputs, op, identity: float):
    head = torch.full_like(inputs[..., :1], identity)
    return op(torch.cat([head, inputs[..., :-1]], dim=-1), dim=-1)


def inclusive_sum(
    inputs: torch.Tensor, packed_info: Optional[torch.Tensor] = None, indices: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Cumulative sum along each ray (the last dimension when batched)."""
    if packed_info is None and indices is None:
        return torch.cumsum(inputs, dim=-1)
    return _packed_scan(inputs, packed_info, indices, torch.cumsum, 0.0, inclusive=True)


def exclusive_sum(
    inputs: torch.Tensor, packed_info: Optional[torch.Tensor] = None, indices: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Sum of the elements before each one in its ray (0 for the first)."""
    if packed_info is None and indices is None:
        return _exclusive_batched(inputs, torch.cumsum, 0.0)
    return _packed_scan(inputs, packed_info, indices, torch.cumsum, 0.0, inclusive=False)


def inclusive_prod(
    inputs: torch.Tensor, packed_info: Optional[torch.Tensor] = None, indices: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Cumulative product along each ray."""
    if packed_info is None and indices is None:
        return torch.cumprod(inputs, dim=-1)
    return _packed_scan(inputs, packed_info, indices, torch.cumprod, 1.0, inclusive=True)


def exclusive_prod(
    inputs: torch.Tensor, packed_info: Optional[torch.Tensor] = None, indices: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Product of the elements before each one in its ray (1 for the first)."""
    if packed_info is None and indices is None:
        return _exclusive_batched(inputs, torch.cumprod, 1.0)
    return _packed_scan(inputs, packed_info, indices, torch.cumprod, 1.0, inclusive=False)
