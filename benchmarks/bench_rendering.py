"""Occupancy-grid marching and volume rendering: fused ops beside the references.

    pytest benchmarks/bench_rendering.py --benchmark-only      # pytest-benchmark
    python benchmarks/bench_rendering.py                       # quick table with ratios

2 threads. Cases (docs/design.md section 3.3):
- marching: 2^16 rays through a 128^3 grid whose occupied cells form a
  head-like shell (about 5% occupied), step 1/256 of the box; fused marcher vs
  the dense masked PyTorch reference (every step generated, then tested); and
  the fused marcher alone with cone_angle = 1/256.
- compositing: 2^20 packed samples over 2^14 rays, C = 32, forward+backward
  (gradients to densities and values): fused ``composite`` vs the packed
  PyTorch reference (cumsum plus index_add) vs nerfacc 0.5.3's batched CPU path
  (render_weight_from_density + accumulate_along_rays on (rays, samples)).
"""

from __future__ import annotations

import time

import pytest
import torch
from conftest import min_seconds

from s3d_fast import ops
from s3d_fast.nn import OccupancyGrid
from s3d_fast.ops import reference

torch.set_num_threads(2)

AABB = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
MARCH_RAYS, MARCH_RES = 2**16, 128
STEP = 2.0 / 256
COMP_RAYS, COMP_SAMPLES, CHANNELS = 2**14, 2**20, 32


# -- inputs ------------------------------------------------------------------
def head_shell_grid(res=MARCH_RES):
    """An ellipsoidal shell (a head's skin) about 2.5 cells thick: ~5% of the cells."""
    grid = OccupancyGrid(AABB, res)
    axes = torch.tensor([0.62, 0.78, 0.7])

    def density(x, _g):
        r = (x / axes).norm(dim=-1)
        return ((r - 1.0).abs() < 0.045).float()

    return grid.from_density(density, threshold=0.5)


def camera_rays(n=MARCH_RAYS, radius=3.0):
    """A 256x256 pinhole image looking at the head from the front."""
    side = int(n**0.5)
    u = torch.linspace(-0.4, 0.4, side)
    v, u = torch.meshgrid(u, u, indexing="ij")
    d = torch.stack([u, v, -torch.ones_like(u)], -1).reshape(-1, 3)
    d = d / d.norm(dim=-1, keepdim=True)
    o = torch.tensor([0.0, 0.0, radius]).expand_as(d).contiguous()
    return o, d


def march_inputs():
    grid = head_shell_grid()
    o, d = camera_rays()
    near = torch.zeros(len(o))
    far = torch.full((len(o),), 1e10)
    return grid, o, d, near, far


def march_runner(impl, grid, o, d, near, far):
    if impl == "fused":
        bits, blocks, res = grid.bits, grid.block_bits, grid.resolution
        return lambda: ops.occgrid_march(bits, res, AABB, o, d, near, far, STEP, block_bits=blocks)
    binaries = grid.binaries
    return lambda: reference.occgrid_march(binaries, AABB, o, d, near, far, STEP)


def composite_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    per = COMP_SAMPLES // COMP_RAYS
    t = torch.linspace(2.0, 4.0, per + 1)
    t_starts = t[:-1].repeat(COMP_RAYS)
    t_ends = t[1:].repeat(COMP_RAYS)
    sigmas = torch.rand(COMP_SAMPLES, generator=g) * 4
    values = torch.rand(COMP_SAMPLES, CHANNELS, generator=g)
    ray_indices = torch.arange(COMP_RAYS).repeat_interleave(per)
    return ray_indices, t_starts, t_ends, sigmas, values


def composite_runner(impl, ray_indices, t_starts, t_ends, sigmas, values):
    sig = sigmas.clone().requires_grad_(True)
    val = values.clone().requires_grad_(True)
    n = COMP_RAYS
    if impl == "fused":

        def fwd():
            c, o, _ = ops.composite(sig, val, ray_indices, n, t_starts, t_ends)
            return c, o
    elif impl == "reference":

        def fwd():
            w, _, _ = reference.render_weight_from_density(t_starts, t_ends, sig, ray_indices=ray_indices, n_rays=n)
            return reference.accumulate_along_rays(w, val, ray_indices, n), reference.accumulate_along_rays(
                w, None, ray_indices, n
            )
    elif impl == "nerfacc":
        import nerfacc

        per = COMP_SAMPLES // COMP_RAYS
        ts, te = t_starts.view(n, per), t_ends.view(n, per)

        def fwd():
            w, _, _ = nerfacc.render_weight_from_density(ts, te, sig.view(n, per))
            return nerfacc.accumulate_along_rays(w, val.view(n, per, CHANNELS)), nerfacc.accumulate_along_rays(w, None)
    else:
        raise ValueError(impl)
    gc, go = torch.randn(n, CHANNELS), torch.randn(n, 1)

    def step():
        c, o = fwd()
        return torch.autograd.grad([c, o], [sig, val], [gc, go])

    return step


def _nerfacc_available():
    try:
        import nerfacc  # noqa: F401
    except Exception:
        return False
    return True


COMPOSITE_IMPLS = ["fused", "reference"] + (["nerfacc"] if _nerfacc_available() else [])


# -- pytest-benchmark ----------------------------------------------------------
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_march(benchmark, record, impl):
    inputs = march_inputs()
    run = march_runner(impl, *inputs)
    benchmark.group = "occupancy-grid marching 2^16 rays, 128^3 shell, step 1/256"
    out = benchmark.pedantic(run, rounds=5 if impl == "fused" else 3, iterations=1, warmup_rounds=1)
    t = min_seconds(benchmark)  # fastest round, alike for both (see conftest.min_seconds)
    if t is None:  # --benchmark-disable
        return
    record("occupancy-grid marching, 2^16 rays", impl, MARCH_RAYS / t / 1e6, "M rays/s")
    benchmark.extra_info.update(
        rays_per_s=MARCH_RAYS / t,
        samples_per_s=out[0].numel() / t,
        samples=out[0].numel(),
        occupied_fraction=float(inputs[0].binaries.float().mean()),
    )


def test_march_cone_angle(benchmark, record):
    # cone_angle = 1/256 from near = 0: the steps follow t += clamp(t * cone, step, 1e10);
    # the walk replays that recurrence across empty space without grid lookups.
    grid, o, d, near, far = march_inputs()
    bits, blocks, res = grid.bits, grid.block_bits, grid.resolution
    benchmark.group = "occupancy-grid marching 2^16 rays, 128^3 shell, step 1/256, cone_angle 1/256"
    out = benchmark.pedantic(
        lambda: ops.occgrid_march(bits, res, AABB, o, d, near, far, STEP, 1 / 256, block_bits=blocks),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    t = min_seconds(benchmark)
    if t is None:  # --benchmark-disable
        return
    record("occupancy-grid marching, 2^16 rays, cone_angle 1/256", "fused", MARCH_RAYS / t / 1e6, "M rays/s")
    benchmark.extra_info.update(rays_per_s=MARCH_RAYS / t, samples=out[0].numel())


@pytest.mark.parametrize("impl", COMPOSITE_IMPLS)
def test_composite_forward_backward(benchmark, record, impl):
    run = composite_runner(impl, *composite_inputs())
    benchmark.group = "compositing fwd+bwd 2^20 samples, 2^14 rays, C=32"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    t = min_seconds(benchmark)
    if t is None:  # --benchmark-disable
        return
    record("compositing fwd+bwd, 2^20 samples, C=32", impl, COMP_SAMPLES / t / 1e6, "M samples/s")
    benchmark.extra_info.update(rays_per_s=COMP_RAYS / t, samples_per_s=COMP_SAMPLES / t)


# -- quick table ---------------------------------------------------------------
def _median_time(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    print(f"threads: {torch.get_num_threads()}")
    inputs = march_inputs()
    print(
        f"marching: {MARCH_RAYS} rays, {MARCH_RES}^3 grid, "
        f"{100 * float(inputs[0].binaries.float().mean()):.1f}% occupied"
    )
    fused_out = march_runner("fused", *inputs)()
    ref_out = march_runner("reference", *inputs)()
    # Same samples up to midpoints that sit on a cell face within an ulp
    # (the kernel's x = o + t d may be fused into an FMA): a handful in 10^6.
    differ = abs(fused_out[0].numel() - ref_out[0].numel())
    assert differ <= 1e-4 * ref_out[0].numel(), "fused and reference marchers disagree"
    print(f"  samples: fused {fused_out[0].numel()}, reference {ref_out[0].numel()}")
    rows = {}
    for impl, rounds in (("fused", 5), ("reference", 1)):
        t = _median_time(march_runner(impl, *inputs), rounds)
        rows[impl] = t
        print(
            f"  {impl:10s} {t * 1e3:9.1f} ms  {MARCH_RAYS / t / 1e6:8.3f} M rays/s  "
            f"{fused_out[0].numel() / t / 1e6:8.2f} M samples/s"
        )
    print(f"  fused / reference: {rows['reference'] / rows['fused']:.1f}x")
    print(f"compositing fwd+bwd: {COMP_SAMPLES} samples, {COMP_RAYS} rays, C={CHANNELS}")
    comp = composite_inputs()
    rows = {}
    for impl in COMPOSITE_IMPLS:
        t = _median_time(composite_runner(impl, *comp), 5)
        rows[impl] = t
        print(
            f"  {impl:10s} {t * 1e3:9.1f} ms  {COMP_RAYS / t / 1e6:8.3f} M rays/s  "
            f"{COMP_SAMPLES / t / 1e6:8.2f} M samples/s"
        )
    for impl in rows:
        if impl != "fused":
            print(f"  fused vs {impl}: {rows[impl] / rows['fused']:.1f}x")


if __name__ == "__main__":
    main()
