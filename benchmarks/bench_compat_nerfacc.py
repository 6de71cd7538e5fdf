"""s3d_fast.compat.nerfacc: each fused nerfacc function beside its pure-PyTorch reference.

    pytest benchmarks/bench_compat_nerfacc.py --benchmark-only -s

2 threads, one run, same inputs for both:
- render_weight_from_density, forward + backward: 2^20 packed samples over 2^14 rays;
  the reference is s3d_fast.ops.reference's (per-ray cumsum on a dense table).
- accumulate_along_rays, forward + backward, C = 3, same samples; reference index_add.
- rendering (weights, colours, opacity, expected depth), forward + backward, C = 3;
  the reference is nerfacc's own composition of the two references above.
- OccGridEstimator.sampling: 2^16 rays through a 128^3 shell (about 5% occupied), step
  1/256 of the box; the reference is the dense walk that tests every step.
"""

from __future__ import annotations

import pytest
import torch
from bench_rendering import camera_rays, head_shell_grid
from conftest import min_seconds

import s3d_fast.compat.nerfacc as nerfacc
from s3d_fast.ops import reference

torch.set_num_threads(2)

RAYS, SAMPLES, CHANNELS = 2**14, 2**20, 3
STEP = 2.0 / 256
IMPLS = ["fused", "reference"]


def packed_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    per = SAMPLES // RAYS
    t = torch.linspace(2.0, 4.0, per + 1)
    ray_indices = torch.arange(RAYS).repeat_interleave(per)
    sigmas = (torch.rand(SAMPLES, generator=g) * 4).requires_grad_()
    rgbs = torch.rand(SAMPLES, CHANNELS, generator=g).requires_grad_()
    return ray_indices, t[:-1].repeat(RAYS), t[1:].repeat(RAYS), sigmas, rgbs


def reference_rendering(t0, t1, ri, n, rgbs, sigmas):
    w, _, _ = reference.render_weight_from_density(t0, t1, sigmas, ray_indices=ri, n_rays=n)
    colors = reference.accumulate_along_rays(w, rgbs, ri, n)
    opacity = reference.accumulate_along_rays(w, None, ri, n)
    depth = reference.accumulate_along_rays(w, ((t0 + t1) / 2)[:, None], ri, n)
    return colors, opacity, depth / opacity.clamp_min(torch.finfo(rgbs.dtype).eps)


def step_of(name, impl):
    ri, t0, t1, sigmas, rgbs = packed_inputs()
    if name == "render_weight_from_density":
        fn = nerfacc.render_weight_from_density if impl == "fused" else reference.render_weight_from_density

        def forward():
            return fn(t0, t1, sigmas, ray_indices=ri, n_rays=RAYS)[:2]

        inputs = [sigmas]
    elif name == "accumulate_along_rays":
        fn = nerfacc.accumulate_along_rays if impl == "fused" else reference.accumulate_along_rays
        weights = sigmas.detach().mul(0.01).requires_grad_()

        def forward():
            return (fn(weights, rgbs, ri, RAYS),)

        inputs = [weights, rgbs]
    else:

        def forward():
            if impl == "fused":
                return nerfacc.rendering(t0, t1, ri, RAYS, rgb_sigma_fn=lambda *_: (rgbs, sigmas))[:3]
            return reference_rendering(t0, t1, ri, RAYS, rgbs, sigmas)

        inputs = [sigmas, rgbs]

    def step():
        outs = forward()
        return torch.autograd.grad(outs, inputs, [torch.ones_like(o) for o in outs])

    return step


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["render_weight_from_density", "accumulate_along_rays", "rendering"])
def test_packed_function(benchmark, record, name, impl):
    benchmark.group = f"nerfacc.{name} fwd+bwd, 2^20 samples, 2^14 rays"
    benchmark.pedantic(step_of(name, impl), rounds=5, iterations=1, warmup_rounds=1)
    t = min_seconds(benchmark)
    if t is None:  # --benchmark-disable
        return
    record(f"nerfacc.{name} fwd+bwd, 2^20 samples", impl, SAMPLES / t / 1e6, "M samples/s")


@pytest.mark.parametrize("impl", IMPLS)
def test_occ_grid_sampling(benchmark, record, impl):
    estimator = nerfacc.OccGridEstimator([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=128)
    estimator.binaries = head_shell_grid().binaries[0]
    o, d = camera_rays()
    n = o.shape[0]
    if impl == "fused":

        def run():
            return estimator.sampling(o, d, render_step_size=STEP)
    else:
        binaries, roi = estimator.binaries[None], estimator.aabbs[0].tolist()
        near, far = torch.zeros(n), torch.full((n,), 1e10)

        def run():
            return reference.occgrid_march(binaries, roi, o, d, near, far, STEP)[:3]

    benchmark.group = "nerfacc.OccGridEstimator.sampling, 2^16 rays, 128^3 shell, step 1/256"
    out = benchmark.pedantic(run, rounds=5 if impl == "fused" else 2, iterations=1, warmup_rounds=1)
    t = min_seconds(benchmark)
    if t is None:  # --benchmark-disable
        return
    record("nerfacc.OccGridEstimator.sampling, 2^16 rays", impl, n / t / 1e6, "M rays/s", samples=out[0].numel())
