"""What the bindings' input checks cost on the CPU: the same direct
``torch.ops.s3d_fast`` calls with ``check=True`` (a direct caller's default) and
``check=False`` (what s3d_fast.ops passes, having built or validated the offsets
and grid indices itself), and the Python layer's packed_info validation.

    pytest benchmarks/bench_input_checks.py --benchmark-only

The checks read the (n_rays + 1,) offsets or the (R,) grid indices once, next to
kernels that read every sample; the difference is within this VM's noise. Sizes of
bench_rendering.py: 2^20 packed samples over 2^14 rays, C = 32; the marcher
on 2^16 rays through a 128^3 grid with a grid index per ray. 2 threads.
"""

from __future__ import annotations

import pytest
import torch
from bench_rendering import AABB, COMP_RAYS, COMP_SAMPLES, STEP, camera_rays, composite_inputs, head_shell_grid
from conftest import min_seconds

from s3d_fast import _ext, ops

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def packed():
    ray_indices, t_starts, t_ends, sigmas, values = composite_inputs()
    offsets = torch.arange(0, COMP_SAMPLES + 1, COMP_SAMPLES // COMP_RAYS)
    return offsets, t_starts, t_ends, sigmas, values


@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_composite_forward(benchmark, record, packed, check):
    offsets, t_starts, t_ends, sigmas, values = packed
    m = _ext.load()
    benchmark.group = "composite_forward 2^20 samples, C=32"
    benchmark.pedantic(
        lambda: m.composite_forward(offsets, sigmas, values, t_starts, t_ends, 0, 0.0, check),
        rounds=7,
        iterations=10,  # this VM's clock ticks in milliseconds
        warmup_rounds=1,
    )
    t = min_seconds(benchmark)
    if t is not None:
        record("composite_forward, 2^20 samples (ms)", "fused" if check else "unchecked", t * 1e3, "ms")


@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_render_weight_forward(benchmark, record, packed, check):
    offsets, t_starts, t_ends, sigmas, _ = packed
    m = _ext.load()
    benchmark.group = "render_weight_forward 2^20 samples"
    benchmark.pedantic(
        lambda: m.render_weight_forward(offsets, sigmas, t_starts, t_ends, 0, check),
        rounds=7,
        iterations=10,  # this VM's clock ticks in milliseconds
        warmup_rounds=1,
    )
    t = min_seconds(benchmark)
    if t is not None:
        record("render_weight_forward, 2^20 samples (ms)", "fused" if check else "unchecked", t * 1e3, "ms")


def test_packed_info_validation(benchmark, record, packed):
    """The Python layer's check of nerfacc's packed_info (2^14 rays)."""
    offsets = packed[0]
    packed_info = torch.stack([offsets[:-1], offsets[1:] - offsets[:-1]], -1)
    from s3d_fast.ops._packed import offsets_from_packed_info

    benchmark.group = "packed_info validation, 2^14 rays"
    benchmark.pedantic(lambda: offsets_from_packed_info(packed_info, COMP_SAMPLES, "bench"), rounds=20, warmup_rounds=2)
    t = min_seconds(benchmark)
    if t is not None:
        record("packed_info validation, 2^14 rays (ms)", "fused", t * 1e3, "ms")


@pytest.fixture(scope="module")
def march():
    grid = head_shell_grid()
    o, d = camera_rays()
    return grid, o, d


@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_occgrid_march_with_grid_indices(benchmark, record, march, check):
    grid, o, d = march
    m = _ext.load()
    n = o.shape[0]
    gi = torch.zeros(n, dtype=torch.long)
    near, far = torch.zeros(n), torch.full((n,), 1e10)
    lo, hi = AABB[:3], AABB[3:]
    center = [(a + b) / 2 for a, b in zip(lo, hi)]
    half = [(b - a) / 2 for a, b in zip(lo, hi)]
    res = [int(r) for r in grid.resolution]
    args = (grid.bits, grid.block_bits, res, center, half, o, d, gi, near, far, STEP, 0.0, check)
    benchmark.group = "occgrid_march 2^16 rays, grid indices"
    benchmark.pedantic(lambda: m.occgrid_march(*args), rounds=5, iterations=2, warmup_rounds=1)
    t = min_seconds(benchmark)
    if t is not None:
        record("occgrid_march, 2^16 rays (ms)", "fused" if check else "unchecked", t * 1e3, "ms")


def test_ops_composite_still_uses_the_unchecked_entry(packed):
    """The Python op's result equals the checked direct call's (same kernel, its own offsets)."""
    offsets, t_starts, t_ends, sigmas, values = packed
    ray_indices = torch.arange(COMP_RAYS).repeat_interleave(COMP_SAMPLES // COMP_RAYS)
    colors, _, _ = ops.composite(sigmas, values, ray_indices, COMP_RAYS, t_starts, t_ends)
    direct, _, _ = _ext.load().composite_forward(offsets, sigmas, values, t_starts, t_ends, 0, 0.0)
    assert torch.equal(colors, direct)
