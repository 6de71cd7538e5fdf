"""Packed per-ray data as a dense (n_rays, width) table, so that per-ray scans and
searches are single vectorised torch calls (no loop over rays)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Segments:
    rays: torch.Tensor  # (S,) ray of each packed element
    cols: torch.Tensor  # (S,) its position inside its ray
    starts: torch.Tensor  # (n_rays,) first element of each ray
    counts: torch.Tensor  # (n_rays,)
    width: int  # the longest ray

    @property
    def n_rays(self) -> int:
        return self.counts.numel()

    def dense(self, x: torch.Tensor, fill: float, shift: int = 0) -> torch.Tensor:
        """(n_rays, width + shift) filled with ``fill``, element i at (ray, col + shift)."""
        out = torch.full((self.n_rays, self.width + shift), fill, dtype=x.dtype, device=x.device)
        return out.index_put((self.rays, self.cols + shift), x)


def from_packed_info(packed_info: torch.Tensor, n_elements: int, name: str = "packed_info") -> Segments:
    if not isinstance(packed_info, torch.Tensor) or packed_info.dim() != 2 or packed_info.shape[-1] != 2:
        raise ValueError(f"{name} must be an (n_rays, 2) tensor of (start, count)")
    starts, counts = packed_info.long().unbind(-1)
    if n_elements and int((starts + counts).max()) > n_elements:
        raise ValueError(f"{name} reaches past the {n_elements} packed elements")
    rays = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    if rays.numel() != n_elements:
        raise ValueError(f"{name} covers {rays.numel()} elements, the packed tensor holds {n_elements}")
    cols = torch.arange(n_elements, device=counts.device) - torch.repeat_interleave(starts, counts)
    order = torch.repeat_interleave(starts, counts) + cols
    if not bool((order == torch.arange(n_elements, device=counts.device)).all()):
        raise ValueError(f"{name}'s chunks must cover the packed elements in order")
    width = int(counts.max()) if counts.numel() else 0
    return Segments(rays, cols, starts, counts, width)


def packed_info_of(ray_indices: torch.Tensor, n_rays=None) -> torch.Tensor:
    """(n_rays, 2) (start, count) of sorted ``ray_indices``; nerfacc's pack_info."""
    if not isinstance(ray_indices, torch.Tensor) or ray_indices.dim() != 1:
        raise ValueError("ray_indices must be a 1-D tensor (n_samples,)")
    if n_rays is None:
        n_rays = int(ray_indices.max()) + 1 if ray_indices.numel() else 0
    counts = torch.bincount(ray_indices.long(), minlength=int(n_rays))
    if counts.numel() > int(n_rays):
        raise ValueError(f"ray_indices hold rays up to {counts.numel() - 1}, n_rays is {n_rays}")
    counts = counts.to(ray_indices.dtype)
    starts = torch.cumsum(counts, 0, dtype=ray_indices.dtype) - counts
    return torch.stack([starts, counts], -1)
