"""nerfacc's ray data specs: plain dataclasses, batched (n_rays, n) or packed (all,)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class RaySamples:
    """Samples along rays: ``vals`` (n_rays, n_samples), or (all_samples,) with
    ``packed_info`` (n_rays, 2) (start, count) and/or ``ray_indices``."""

    vals: torch.Tensor
    packed_info: Optional[torch.Tensor] = None
    ray_indices: Optional[torch.Tensor] = None
    is_valid: Optional[torch.Tensor] = None

    @property
    def device(self) -> torch.device:
        return self.vals.device


@dataclass
class RayIntervals:
    """Interval edges along rays: ``vals`` (n_rays, n_edges), or (all_edges,) packed
    with ``packed_info`` / ``ray_indices`` and the edge flags ``is_left`` / ``is_right``
    (an edge shared by two touching intervals is both)."""

    vals: torch.Tensor
    packed_info: Optional[torch.Tensor] = None
    ray_indices: Optional[torch.Tensor] = None
    is_left: Optional[torch.Tensor] = None
    is_right: Optional[torch.Tensor] = None

    @property
    def device(self) -> torch.device:
        return self.vals.device
