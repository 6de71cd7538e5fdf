"""Tri-plane sampling in pure PyTorch, built on ``grid_sample`` as EG3D does."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._triplane_spec import PLANE_AXES, TriplaneSpec


def _sample_scale(planes: torch.Tensor, points: torch.Tensor, spec: TriplaneSpec) -> list[torch.Tensor]:
    """The three (B, N, C) features of one scale."""
    batch, _, height, width, channels = planes.shape
    features = []
    for k, (u_axis, v_axis) in enumerate(PLANE_AXES[spec.axes]):
        plane = planes[:, k].permute(0, 3, 1, 2)  # (B, C, H, W)
        grid = torch.stack((points[..., u_axis], points[..., v_axis]), dim=-1).unsqueeze(1)
        sampled = F.grid_sample(
            plane, grid, mode="bilinear", padding_mode=spec.padding, align_corners=spec.align_corners
        )  # (B, C, 1, N)
        features.append(sampled[:, :, 0].transpose(1, 2))
    return features


def _reduce_planes(features: list[torch.Tensor], mode: str) -> torch.Tensor:
    if mode == "sum":
        return features[0] + features[1] + features[2]
    if mode == "mean":
        return (features[0] + features[1] + features[2]) / 3
    if mode == "product":
        return features[0] * features[1] * features[2]
    return torch.cat(features, dim=-1)


def triplane_sample(
    planes,
    points: torch.Tensor,
    plane_reduce: str = "sum",
    scale_reduce: str = "concat",
    align_corners: bool = False,
    padding: str = "zeros",
    axes: str = "xy_xz_yz",
) -> torch.Tensor:
    """Reference of :func:`s3d_fast.ops.triplane_sample` (same signature and semantics)."""
    spec = TriplaneSpec.parse(planes, points, plane_reduce, scale_reduce, align_corners, padding, axes)
    per_scale = [_reduce_planes(_sample_scale(p, points, spec), spec.plane_reduce) for p in spec.planes]
    if spec.scale_reduce == "sum":
        out = per_scale[0]
        for extra in per_scale[1:]:
            out = out + extra
        return out
    return torch.cat(per_scale, dim=-1)
