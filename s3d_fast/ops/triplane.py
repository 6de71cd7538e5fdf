"""Fused multi-scale tri-plane sampling (autograd wrapper over the extension)."""

from __future__ import annotations

import torch

from .. import _ext
from ._first_order import first_order
from ._half import is_half, narrow
from ._triplane_spec import AXES, PADDINGS, PLANE_REDUCES, SCALE_REDUCES, TriplaneSpec

_FUSED_DTYPES = (torch.float32, torch.float64)


class _TriplaneSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, codes, points, *planes):
        ctx.codes = codes
        ctx.save_for_backward(points, *planes)
        return _ext.load().triplane_forward(list(planes), points, *codes)

    @staticmethod
    def backward(ctx, grad_out):
        points, *planes = ctx.saved_tensors
        points_grad = ctx.needs_input_grad[1]
        planes_grad = any(ctx.needs_input_grad[2:])
        if not (points_grad or planes_grad):
            return (None,) * (2 + len(planes))
        with torch.no_grad():
            grad_points, grad_planes = _ext.load().triplane_backward(
                grad_out.contiguous(), list(planes), points, *ctx.codes, points_grad, planes_grad
            )
        grad_planes = [g if need else None for g, need in zip(grad_planes, ctx.needs_input_grad[2:])]
        grads = (grad_points if points_grad else None, *grad_planes)
        return (None, *first_order("triplane_sample", grads, (grad_out, points, *planes)))


def triplane_sample(
    planes,
    points: torch.Tensor,
    plane_reduce: str = "sum",
    scale_reduce: str = "concat",
    align_corners: bool = False,
    padding: str = "zeros",
    axes: str = "xy_xz_yz",
) -> torch.Tensor:
    """Sample multi-scale tri-planes at 3-D points in one fused pass.

    Args:
        planes: a (B, 3, H, W, C) channels-last tensor, or a list of them (one
            per scale; H and W may differ, B and C may not).
        points: (B, N, 3) positions; the box [-1, 1]^3 maps onto the planes.
        plane_reduce: how the 3 planes of a scale combine: ``sum``, ``mean``,
            ``product`` (K-Planes) or ``concat``.
        scale_reduce: how scales combine: ``concat`` or ``sum``.
        align_corners, padding: as in ``torch.nn.functional.grid_sample``
            (``padding`` is ``zeros`` or ``border``).
        axes: ``xy_xz_yz`` samples the planes at (x, y), (x, z), (y, z);
            ``eg3d`` reproduces EG3D's projection, whose third plane is
            sampled at (z, x), for checkpoint compatibility.

    Returns:
        (B, N, C_out) features, C_out = C x (3 if plane_reduce is concat) x
        (number of scales if scale_reduce is concat).

    Gradients flow to every plane tensor and to ``points``. Bilinear
    arithmetic matches ``grid_sample``; the (N, 3, C) intermediate is never
    materialised. Float32 and float64 on CPU and CUDA; float16 and bfloat16
    are computed in float32 and the result cast back. A NaN coordinate gives
    NaN features from the planes it selects; +-inf and huge coordinates fall
    outside the planes (docs/kernels/triplane.md). Second derivatives are
    refused with an error (the backward is first-order only).
    """
    spec = TriplaneSpec.parse(planes, points, plane_reduce, scale_reduce, align_corners, padding, axes)
    if is_half(points):
        widened = [p.float() for p in spec.planes]
        out = triplane_sample(widened, points.float(), plane_reduce, scale_reduce, align_corners, padding, axes)
        return narrow(out, points.dtype)
    if points.dtype not in _FUSED_DTYPES:
        raise TypeError(f"triplane_sample supports float16, bfloat16, float32 and float64, got {points.dtype}")
    if points.device.type not in ("cpu", "cuda"):
        raise ValueError(f"triplane_sample runs on cpu or cuda, got {points.device}")
    codes = (
        PLANE_REDUCES.index(spec.plane_reduce),
        SCALE_REDUCES.index(spec.scale_reduce),
        spec.align_corners,
        PADDINGS.index(spec.padding),
        AXES.index(spec.axes),
    )
    planes = [p.contiguous() for p in spec.planes]
    return _TriplaneSample.apply(codes, points.contiguous(), *planes)
