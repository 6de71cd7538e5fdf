"""Tri-plane workloads of the benchmarks: the fused op, its reference, and the
EG3D-style peer (``grid_sample`` on planes stored (B, 3, C, H, W)).

``python -m aids.triplane CASE IMPL`` (``benchmarks/`` on the path) prints the
peak extra memory of one forward pass of IMPL on CASE as JSON (used by
benchmarks and tests).
"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F

from s3d_fast.ops import reference, triplane_sample

# name -> plane sizes per scale (the two configurations)
CASES = {
    "1x256": ((256, 256),),
    "3x64-128-256": ((64, 64), (128, 128), (256, 256)),
}
IMPLS = ("fused", "reference", "eg3d")


def make_inputs(case: str, n_points: int = 2**17, channels: int = 32, batch: int = 1, seed: int = 0):
    """Channels-last planes (list per scale) and uniform points in [-1, 1]^3."""
    generator = torch.Generator().manual_seed(seed)
    planes = [torch.randn(batch, 3, h, w, channels, generator=generator) for h, w in CASES[case]]
    points = torch.rand(batch, n_points, 3, generator=generator) * 2 - 1
    return planes, points


def eg3d_sample_from_planes(planes_nchw, points: torch.Tensor) -> torch.Tensor:
    """EG3D's sample_from_planes, re-expressed: project, one grid_sample for
    the three planes of a scale, mean over planes; concat over scales."""
    outputs = []
    projections = ((0, 1), (0, 2), (2, 0))
    for planes in planes_nchw:
        batch, n_planes, channels, height, width = planes.shape
        grid = torch.stack([points[..., list(axes)] for axes in projections], dim=1)  # (B, 3, N, 2)
        sampled = F.grid_sample(
            planes.reshape(batch * n_planes, channels, height, width),
            grid.reshape(batch * n_planes, 1, -1, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )  # (B*3, C, 1, N)
        features = sampled.reshape(batch, n_planes, channels, -1).permute(0, 1, 3, 2)
        outputs.append(features.mean(dim=1))
    return torch.cat(outputs, dim=-1)


def runner(impl: str, planes, points):
    """A zero-argument forward for IMPL (the EG3D peer gets its own plane layout)."""
    if impl == "fused":
        return lambda: triplane_sample(planes, points, plane_reduce="mean", axes="eg3d")
    if impl == "reference":
        return lambda: reference.triplane_sample(planes, points, plane_reduce="mean", axes="eg3d")
    if impl == "eg3d":
        planes_nchw = [p.permute(0, 1, 4, 2, 3).contiguous() for p in planes]
        return lambda: eg3d_sample_from_planes(planes_nchw, points)
    raise ValueError(f"unknown impl {impl!r}; choose from {IMPLS}")


def differentiable_runner(impl: str, planes, points):
    """(forward, leaves): IMPL's forward with ``points`` and the planes as gradient leaves.
    The EG3D peer differentiates through its own (B, 3, C, H, W) planes, so its leaves are
    those; the others' are the channels-last planes themselves."""
    points.requires_grad_()
    if impl == "eg3d":
        leaves = [p.permute(0, 1, 4, 2, 3).contiguous().requires_grad_() for p in planes]
        return (lambda: eg3d_sample_from_planes(leaves, points)), leaves
    leaves = [p.requires_grad_() for p in planes]
    return runner(impl, leaves, points), leaves


def _main(argv) -> int:
    from . import memory

    case, impl = argv
    torch.set_num_threads(2)
    planes, points = make_inputs(case)
    forward = runner(impl, planes, points)
    if impl == "fused":
        from s3d_fast import _ext

        _ext.load()
    # Warm up on a few points so one-time allocations are not counted.
    runner(impl, planes, points[:, :16])()
    peak, out = memory.peak_bytes_during(forward)
    print(
        json.dumps(
            {
                "case": case,
                "impl": impl,
                "peak_bytes": peak,
                "output_bytes": out.numel() * out.element_size(),
                "n_points": points.shape[1],
                "channels": planes[0].shape[-1],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
