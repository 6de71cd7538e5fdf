"""Defined results for any coordinate: a NaN point gives NaN for that point and
nothing else; infinite and huge coordinates give finite results; a NaN in one
ray stays in that ray (fused ops and their float64 references alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from s3d_fast import ops
from s3d_fast.ops import reference

NAN, INF = float("nan"), float("inf")
BAD = [NAN, INF, -INF, 1e30, -1e30, 3e9, -3e9]
ROOT = Path(__file__).resolve().parents[1]


def _with_bad_points(points: torch.Tensor, axis: int, values=BAD) -> tuple[torch.Tensor, list[float]]:
    """points (N, D) whose first len(values) rows get one bad value on ``axis``."""
    bad = points.clone()
    for i, v in enumerate(values):
        bad[i, axis] = v
    return bad, values


# -- tri-plane ----------------------------------------------------------------


@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_triplane_nan_points_give_nan_only_for_themselves(padding, align_corners):
    torch.manual_seed(0)
    planes = torch.randn(1, 3, 6, 7, 4, requires_grad=True)
    good = torch.rand(1, 20, 3) * 2.4 - 1.2
    points = good.clone()
    points[0, 0, 0] = NAN  # x: planes (x, y) and (x, z)
    points[0, 1, 2] = NAN  # z: planes (x, z) and (y, z)
    points.requires_grad_(True)
    kw = dict(plane_reduce="concat", padding=padding, align_corners=align_corners)
    out = ops.triplane_sample(planes, points, **kw)
    nan = torch.isnan(out[0])
    c = 4
    assert nan[0, : 2 * c].all() and not nan[0, 2 * c :].any()
    assert nan[1, c:].all() and not nan[1, :c].any()
    assert not nan[2:].any()
    if padding == "zeros":  # where grid_sample gives NaN, and nowhere else
        ref = reference.triplane_sample(planes.double(), points.double(), **kw)
        assert torch.equal(torch.isnan(ref[0]), nan)
        torch.testing.assert_close(out[0][~nan], ref[0][~nan].float(), rtol=1e-5, atol=1e-6)
    # The good points sample as they do alone; points all NaN reach no texel's
    # gradient, and their own gradient is NaN.
    alone = ops.triplane_sample(planes, good[:, 2:], **kw)
    assert torch.equal(out[:, 2:], alone)
    points = good.clone()
    points[0, :2] = NAN
    points.requires_grad_(True)
    out = ops.triplane_sample(planes, points, **kw)
    g = torch.randn_like(out)
    g_planes, g_points = torch.autograd.grad(out, (planes, points), g)
    g_planes_alone = torch.autograd.grad(alone, planes, g[:, 2:])[0]
    assert torch.equal(g_planes, g_planes_alone)
    assert torch.isnan(g_points[0, :2]).any(dim=-1).all() and torch.isfinite(g_points[0, 2:]).all()


@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_triplane_infinite_and_huge_points_give_finite_results(padding):
    torch.manual_seed(1)
    planes = torch.randn(1, 3, 5, 5, 3, requires_grad=True)
    points, _ = _with_bad_points(torch.rand(12, 3) * 2 - 1, axis=1, values=BAD[1:])
    points = points[None].requires_grad_(True)
    out = ops.triplane_sample(planes, points, padding=padding, plane_reduce="sum")
    assert torch.isfinite(out).all()
    g_planes, g_points = torch.autograd.grad(out.sum(), (planes, points))
    assert torch.isfinite(g_planes).all() and torch.isfinite(g_points).all()
    # Beyond the plane: zeros padding reads nothing, border padding the edge texel.
    far = points.detach().clone()
    far[0, :6, 1] = torch.tensor([1e6, -1e6, 1e6, -1e6, 1e6, -1e6])
    torch.testing.assert_close(out[0, :6], ops.triplane_sample(planes, far, padding=padding)[0, :6])
    if padding == "border":  # grid_sample clamps infinities to the border too
        ref = reference.triplane_sample(planes.double(), points.double(), padding=padding)
        torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-6)


def test_triplane_nan_matches_grid_sample_in_float64():
    torch.manual_seed(2)
    planes = torch.randn(2, 3, 4, 6, 5, dtype=torch.float64)
    points = torch.rand(2, 9, 3, dtype=torch.float64) * 2 - 1
    points[1, 3] = NAN
    out = ops.triplane_sample(planes, points, plane_reduce="product")
    ref = reference.triplane_sample(planes, points, plane_reduce="product")
    assert torch.equal(torch.isnan(out), torch.isnan(ref)) and torch.isnan(out[1, 3]).all()
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num())
    # grid_sample itself, on one plane:
    grid = points[:, None, :, :2]
    gs = F.grid_sample(planes[:, 0].permute(0, 3, 1, 2), grid, align_corners=False)
    assert torch.isnan(gs[1, :, 0, 3]).all() and not torch.isnan(gs[0]).any()


# -- hash grid ---------------------------------------------------------------

HASH = dict(n_levels=4, n_features_per_level=2, log2_hashmap_size=8, base_resolution=4, per_level_scale=2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_hashgrid_bad_coordinates_match_the_reference(dtype, interpolation):
    torch.manual_seed(3)
    cfg = ops.HashGridConfig(**HASH, interpolation=interpolation)
    params = (torch.rand(cfg.layout(3).n_params, dtype=dtype) - 0.5).requires_grad_(True)
    points, bad = _with_bad_points(torch.rand(16, 3, dtype=dtype), axis=2)
    points.requires_grad_(True)
    out = ops.hashgrid_encode(points, params, cfg)
    # Same dtype: where a cell saturates depends on it (the largest float below 2^31).
    ref = reference.hashgrid_encode(points, params, cfg)
    nan_rows = torch.tensor([v != v for v in bad] + [False] * (16 - len(bad)))
    assert torch.isnan(out[nan_rows]).all() and torch.isfinite(out[~nan_rows]).all()
    torch.testing.assert_close(out, ref, equal_nan=True, rtol=1e-5, atol=1e-6)
    # A NaN point's gradient reaches no table entry; the others' is unchanged.
    g = torch.randn_like(out)
    g_params, g_points = torch.autograd.grad(out, (params, points), g)
    keep = ~nan_rows
    alone = ops.hashgrid_encode(points.detach()[keep], params, cfg)
    g_alone = torch.autograd.grad(alone, params, g[keep])[0]
    assert torch.isfinite(g_params).all()
    torch.testing.assert_close(g_params, g_alone)
    assert torch.isnan(g_points[nan_rows]).any(dim=-1).all() and torch.isfinite(g_points[keep]).all()
    # Saturated coordinates (inf, +-1e30, +-3e9): no slope.
    assert torch.equal(g_points[1 : len(bad), 2], torch.zeros(len(bad) - 1, dtype=dtype))


def test_hashgrid_nan_no_longer_refused_but_encoded_as_nan():
    cfg = ops.HashGridConfig(**HASH)
    params = torch.rand(cfg.layout(2).n_params)
    out = ops.hashgrid_encode(torch.tensor([[0.1, NAN], [0.3, 0.4]]), params, cfg)
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


# -- volume rendering ---------------------------------------------------------


@pytest.mark.parametrize("impl", [ops, reference], ids=["fused", "reference"])
def test_a_nan_density_stays_in_its_ray(impl):
    torch.manual_seed(4)
    ray_indices = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    t0 = torch.rand(9, dtype=torch.float64)
    sigmas = torch.rand(9, dtype=torch.float64)
    sigmas[1] = NAN
    sigmas[4] = INF
    w, trans, alphas = impl.render_weight_from_density(t0, t0 + 0.1, sigmas, ray_indices=ray_indices, n_rays=3)
    assert torch.isnan(w[1:3]).all() and torch.isfinite(w[5:]).all()
    clean = sigmas.clone()
    clean[:5] = 0.5
    w_clean = impl.render_weight_from_density(t0, t0 + 0.1, clean, ray_indices=ray_indices, n_rays=3)[0]
    assert torch.equal(w[5:], w_clean[5:])
    colors, opacity, depth = impl.composite(sigmas, torch.rand(9, 2, dtype=torch.float64), ray_indices, 3, t0, t0 + 0.1)
    assert torch.isnan(opacity[0]).all() and torch.isfinite(opacity[1:]).all()


# -- marching -----------------------------------------------------------------

MARCH = textwrap.dedent(
    """
    import torch
    from s3d_fast import ops
    inf, nan = float("inf"), float("nan")
    bits = torch.full((1, 2, 64), 255, dtype=torch.uint8)  # 8^3 cells, all occupied
    o = torch.tensor([[0.0, 0.0, -3.0]]).repeat(12, 1)
    d = torch.tensor([[0.0, 0.0, 1.0]]).repeat(12, 1)
    near, far = torch.zeros(12), torch.full((12,), 6.0)
    o[1, 0] = nan; d[2, 1] = nan; o[3, 2] = -inf; d[4] = 0.0; near[5] = -inf; near[6] = -1e30
    far[7] = inf; far[8] = nan; o[9, 0] = 1e30; d[10] = torch.tensor([1e-30, 0.0, 1.0]); near[11] = nan
    out = ops.occgrid_march(bits, (8, 8, 8), [-1, -1, -1, 1, 1, 1], o, d, near, far, 0.05)
    counts = (out[3][1:] - out[3][:-1]).tolist()
    print(counts)
    print(bool(torch.isfinite(out[1]).all() and torch.isfinite(out[2]).all()))
    """
)


def test_marching_rays_with_nonfinite_or_huge_values_end():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", MARCH], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts_line, finite = proc.stdout.split("\n")[:2]
    counts = json.loads(counts_line)
    full = counts[0]  # the box [-2, 2]^3 of the coarser level: t in [1, 5]
    assert full == 80 and finite == "True"
    # NaN origin or direction, a -inf origin, a NaN, -inf or -1e30 near: no samples.
    assert counts[1] == counts[2] == counts[3] == counts[5] == counts[6] == counts[11] == 0
    # An infinite or NaN far: the box ends the ray.
    assert counts[7] == counts[8] == full
    # A zero direction from outside the box, an origin at 1e30: no samples; a direction
    # of 1e-30 across: all of them.
    assert counts[4] == counts[9] == 0 and counts[10] == full
