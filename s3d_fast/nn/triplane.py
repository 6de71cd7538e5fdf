"""Learnable multi-scale tri-planes."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import triplane_sample


class TriPlane(nn.Module):
    """Multi-scale tri-plane features sampled with the fused op.

    Args:
        channels: features per plane texel (C).
        resolutions: one int (square planes) or (H, W) pair per scale.
        batch: how many independent plane sets (e.g. identities) the module holds.
        init_std: std of the normal initialisation.
        Other arguments as in :func:`s3d_fast.ops.triplane_sample`.

    ``forward(points)`` maps (B, N, 3) points in [-1, 1]^3 to (B, N, out_channels).
    """

    def __init__(
        self,
        channels: int = 32,
        resolutions=(64, 128, 256),
        batch: int = 1,
        plane_reduce: str = "sum",
        scale_reduce: str = "concat",
        align_corners: bool = False,
        padding: str = "zeros",
        axes: str = "xy_xz_yz",
        init_std: float = 0.1,
    ):
        super().__init__()
        if channels < 1 or batch < 1:
            raise ValueError(f"channels and batch must be positive, got {channels} and {batch}")
        if isinstance(resolutions, int):
            resolutions = (resolutions,)
        shapes = [(r, r) if isinstance(r, int) else tuple(r) for r in resolutions]
        if not shapes or any(len(s) != 2 or min(s) < 1 for s in shapes):
            raise ValueError(f"resolutions must be positive ints or (H, W) pairs, got {resolutions}")
        self.planes = nn.ParameterList(
            nn.Parameter(torch.randn(batch, 3, h, w, channels) * init_std) for h, w in shapes
        )
        self.options = dict(
            plane_reduce=plane_reduce,
            scale_reduce=scale_reduce,
            align_corners=align_corners,
            padding=padding,
            axes=axes,
        )
        per_scale = channels * (3 if plane_reduce == "concat" else 1)
        self.out_channels = per_scale * (len(shapes) if scale_reduce == "concat" else 1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return triplane_sample(list(self.planes), points, **self.options)

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{p.shape[2]}x{p.shape[3]}" for p in self.planes)
        return f"scales=[{sizes}], channels={self.planes[0].shape[-1]}, out={self.out_channels}, {self.options}"
