"""nerfacc.pack: ``pack_info`` (on a CPU too; nerfacc 0.5.3 refuses non-CUDA input)."""

from __future__ import annotations

from typing import Optional

import torch

from ._segments import packed_info_of


@torch.no_grad()
def pack_info(ray_indices: torch.Tensor, n_rays: Optional[int] = None) -> torch.Tensor:
    """(n_rays, 2) (start, count) of each ray's chunk in sorted ``ray_indices``;
    ``n_rays`` defaults to max(ray_indices) + 1. Same dtype as ``ray_indices``."""
    return packed_info_of(ray_indices, n_rays)
