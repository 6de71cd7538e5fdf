"""Argument parsing and validation shared by the fused and reference tri-plane ops."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PLANE_REDUCES = ("sum", "mean", "product", "concat")
SCALE_REDUCES = ("concat", "sum")
PADDINGS = ("zeros", "border")
AXES = ("xy_xz_yz", "eg3d")
MAX_SCALES = 8

# (u, v) point axes sampled by planes 0, 1, 2; u runs along W, v along H.
PLANE_AXES = {
    "xy_xz_yz": ((0, 1), (0, 2), (1, 2)),
    # EG3D's projection samples its third plane at (z, x), not (y, z).
    "eg3d": ((0, 1), (0, 2), (2, 0)),
}


def _choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


@dataclass(frozen=True)
class TriplaneSpec:
    planes: tuple
    plane_reduce: str
    scale_reduce: str
    align_corners: bool
    padding: str
    axes: str

    @property
    def channels(self) -> int:
        return self.planes[0].shape[-1]

    @property
    def out_channels(self) -> int:
        per_scale = self.channels * (3 if self.plane_reduce == "concat" else 1)
        return per_scale * (len(self.planes) if self.scale_reduce == "concat" else 1)

    @staticmethod
    def parse(planes, points, plane_reduce, scale_reduce, align_corners, padding, axes) -> TriplaneSpec:
        if isinstance(planes, torch.Tensor):
            planes = (planes,)
        elif isinstance(planes, (list, tuple)):
            planes = tuple(planes)
        else:
            raise TypeError(f"planes must be a tensor or a list of tensors, got {type(planes).__name__}")
        if not planes:
            raise ValueError("planes must hold at least one scale")
        if len(planes) > MAX_SCALES:
            raise ValueError(f"planes: at most {MAX_SCALES} scales are supported, got {len(planes)}")
        if not isinstance(points, torch.Tensor):
            raise TypeError(f"points must be a tensor, got {type(points).__name__}")
        if not points.is_floating_point():
            raise TypeError(f"points must be a floating-point tensor, got {points.dtype}")
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"points must have shape (B, N, 3), got {tuple(points.shape)}")
        batch = points.shape[0]
        for s, plane in enumerate(planes):
            name = f"planes[{s}]"
            if not isinstance(plane, torch.Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(plane).__name__}")
            if plane.dtype != points.dtype:
                raise TypeError(f"{name} has dtype {plane.dtype} but points have {points.dtype}")
            if plane.device != points.device:
                raise ValueError(f"{name} is on {plane.device} but points are on {points.device}")
            if plane.dim() != 5 or plane.shape[1] != 3:
                raise ValueError(f"{name} must have shape (B, 3, H, W, C), got {tuple(plane.shape)}")
            if plane.shape[0] != batch:
                raise ValueError(f"{name} has batch size {plane.shape[0]} but points have {batch}")
            if min(plane.shape[2:]) < 1:
                raise ValueError(f"{name} has an empty dimension: {tuple(plane.shape)}")
            if plane.shape[-1] != planes[0].shape[-1]:
                raise ValueError(f"{name} has {plane.shape[-1]} channels but planes[0] has {planes[0].shape[-1]}")
        if not isinstance(align_corners, bool):
            raise TypeError(f"align_corners must be a bool, got {type(align_corners).__name__}")
        return TriplaneSpec(
            planes=planes,
            plane_reduce=_choice("plane_reduce", plane_reduce, PLANE_REDUCES),
            scale_reduce=_choice("scale_reduce", scale_reduce, SCALE_REDUCES),
            align_corners=align_corners,
            padding=_choice("padding", padding, PADDINGS),
            axes=_choice("axes", axes, AXES),
        )
