"""The fused ops on a CUDA device, beside their pure-PyTorch references and the public
peers, at the CPU benchmarks' sizes, side by side in one run:

    pytest benchmarks/bench_cuda.py --benchmark-only --benchmark-columns=min,median,mean --benchmark-sort=name

Skipped without a CUDA device (CI has none). Every timed call ends with
``torch.cuda.synchronize()``, so a round is the whole op, not its launch. The summary
line of each group (benchmarks/conftest.py) is from the median round.

- tri-plane: B = 1, N = 2^17, C = 32, (a) one 256^2 scale, (b) 64/128/256 concatenated;
  fused vs reference vs EG3D's ``sample_from_planes`` arrangement of ``grid_sample``.
- hash grid: N = 2^18, L = 16, F = 2, T = 2^19, scale 1.5; fused vs reference
  (tiny-cuda-nn, the peer, is compared for equality in tests/test_hashgrid.py where it is installed).
- marching: 2^16 rays through the 128^3 head shell, step 1/256; fused vs the dense
  reference vs nerfacc 0.5.3's ``OccGridEstimator.sampling`` (its CUDA path).
- compositing forward + backward: 2^20 packed samples over 2^14 rays, C = 32; fused vs
  the packed reference vs nerfacc 0.5.3's packed CUDA path.
- deterministic backward: the tri-plane (64/128/256) and hash-grid backward passes at the
  sizes above, atomic scatter ("fused") vs the sorted gather that
  ``torch.use_deterministic_algorithms(True)`` selects ("fused deterministic").
"""

from __future__ import annotations

import pytest
import torch
from conftest import median_seconds

from aids.op_comparison import deterministic_algorithms
from aids.triplane import CASES, differentiable_runner, make_inputs, runner
from s3d_fast import ops
from s3d_fast.ops import HashGridConfig, reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEV = "cuda"


def _timed(benchmark, fn, rounds, warmup=2):
    def call():
        out = fn()
        torch.cuda.synchronize()
        return out

    return benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=warmup)


def _rate(benchmark, count):
    seconds = median_seconds(benchmark)
    return None if seconds is None else count / seconds / 1e6


# -- tri-plane ------------------------------------------------------------------------------------------
TRIPLANE_IMPLS = ("fused", "reference", "eg3d")


def _triplane_inputs(case):
    planes, points = make_inputs(case)
    return [p.to(DEV) for p in planes], points.to(DEV)


@pytest.mark.parametrize("impl", TRIPLANE_IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_triplane_forward(benchmark, record, case, impl):
    planes, points = _triplane_inputs(case)
    forward = runner(impl, planes, points)
    benchmark.group = f"cuda triplane forward {case}"
    with torch.no_grad():
        _timed(benchmark, forward, rounds=50, warmup=5)
    record(f"cuda triplane forward {case}", impl, _rate(benchmark, points.shape[1]), "Mpts/s")


@pytest.mark.parametrize("impl", TRIPLANE_IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_triplane_forward_backward(benchmark, record, case, impl):
    planes, points = _triplane_inputs(case)
    forward, leaves = differentiable_runner(impl, planes, points)
    grad_out = torch.randn_like(forward())
    benchmark.group = f"cuda triplane forward+backward {case}"
    _timed(benchmark, lambda: torch.autograd.grad(forward(), [points, *leaves], grad_out), rounds=30, warmup=3)
    record(f"cuda triplane forward+backward {case}", impl, _rate(benchmark, points.shape[1]), "Mpts/s")


# -- hash grid ------------------------------------------------------------------------------------------
HASH_N = 1 << 18
HASH_CONFIG = HashGridConfig(
    n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5
)


HASH_IMPLS = ["fused", "reference"]


@pytest.fixture(scope="module")
def hash_data():
    g = torch.Generator().manual_seed(0)
    lay = HASH_CONFIG.layout(3)
    x = torch.rand(HASH_N, 3, generator=g).to(DEV)
    params = torch.empty(lay.n_params).uniform_(-1e-4, 1e-4, generator=g).to(DEV)
    grad = torch.randn(HASH_N, lay.n_output_dims, generator=g).to(DEV)
    return x, params, grad


def _hash_encoder(impl):
    if impl == "fused":
        return lambda x, p: ops.hashgrid_encode(x, p, HASH_CONFIG)
    return lambda x, p: reference.hashgrid_encode(x, p, HASH_CONFIG)


@pytest.mark.parametrize("impl", HASH_IMPLS)
def test_cuda_hashgrid_forward(benchmark, record, hash_data, impl):
    x, params, _ = hash_data
    encode = _hash_encoder(impl)
    benchmark.group = "cuda hashgrid forward 2^18 points, L=16, T=2^19"
    with torch.no_grad():
        _timed(benchmark, lambda: encode(x, params), rounds=50, warmup=5)
    record("cuda hashgrid forward", impl, _rate(benchmark, HASH_N), "M pts/s")


@pytest.mark.parametrize("impl", HASH_IMPLS)
def test_cuda_hashgrid_forward_backward(benchmark, record, hash_data, impl):
    x, params, grad = hash_data
    encode = _hash_encoder(impl)

    def step():
        p = params.detach().requires_grad_()
        return torch.autograd.grad(encode(x, p), p, grad)

    benchmark.group = "cuda hashgrid forward+backward (table gradient)"
    _timed(benchmark, step, rounds=30, warmup=3)
    record("cuda hashgrid forward+backward", impl, _rate(benchmark, HASH_N), "M pts/s")


# -- marching and compositing ----------------------------------------------------------------------------
def _nerfacc():
    """nerfacc with its CUDA kernels (JIT-compiled on first use), or None."""
    try:
        import nerfacc
        from nerfacc.cuda import _backend

        return nerfacc if _backend._C is not None else None
    except Exception:
        return None


RENDER_IMPLS = ["fused", "reference", "nerfacc"]


def _march_inputs():
    from bench_rendering import AABB, march_inputs

    grid, o, d, near, far = march_inputs()
    return AABB, grid.to(DEV), o.to(DEV), d.to(DEV), near.to(DEV), far.to(DEV)


@pytest.mark.parametrize("impl", RENDER_IMPLS)
def test_cuda_march(benchmark, record, impl):
    from bench_rendering import MARCH_RAYS, STEP

    aabb, grid, o, d, near, far = _march_inputs()
    if impl == "fused":
        bits, blocks, res = grid.bits, grid.block_bits, grid.resolution
        run = lambda: ops.occgrid_march(bits, res, aabb, o, d, near, far, STEP, block_bits=blocks)  # noqa: E731
    elif impl == "reference":
        binaries = grid.binaries
        run = lambda: reference.occgrid_march(binaries, aabb, o, d, near, far, STEP)  # noqa: E731
    else:
        nerfacc = _nerfacc()
        if nerfacc is None:
            pytest.skip("nerfacc 0.5.3 with its CUDA kernels is not available")
        est = nerfacc.OccGridEstimator(aabb, grid.resolution, levels=1).to(DEV)
        est.binaries = grid.binaries[0].clone()
        run = lambda: est.sampling(o, d, render_step_size=STEP, near_plane=0.0, far_plane=1e10)  # noqa: E731
    benchmark.group = "cuda occupancy-grid marching 2^16 rays, 128^3 shell, step 1/256"
    out = _timed(benchmark, run, rounds=30 if impl != "reference" else 10, warmup=3)
    benchmark.extra_info["samples"] = int(out[0].numel())
    record(
        "cuda occupancy-grid marching, 2^16 rays",
        impl,
        _rate(benchmark, MARCH_RAYS),
        "M rays/s",
        samples=int(out[0].numel()),
    )


@pytest.mark.parametrize("impl", RENDER_IMPLS)
def test_cuda_composite_forward_backward(benchmark, record, impl):
    from bench_rendering import COMP_RAYS, COMP_SAMPLES, composite_inputs

    ray_indices, t_starts, t_ends, sigmas, values = (x.to(DEV) for x in composite_inputs())
    sig, val, n = sigmas.clone().requires_grad_(), values.clone().requires_grad_(), COMP_RAYS
    if impl == "fused":

        def fwd():
            c, o, _ = ops.composite(sig, val, ray_indices, n, t_starts, t_ends)
            return c, o
    else:
        lib = reference if impl == "reference" else _nerfacc()
        if lib is None:
            pytest.skip("nerfacc 0.5.3 with its CUDA kernels is not available")

        def fwd():  # the packed path: weights, then two accumulations
            w, _, _ = lib.render_weight_from_density(t_starts, t_ends, sig, ray_indices=ray_indices, n_rays=n)
            return (
                lib.accumulate_along_rays(w, val, ray_indices, n),
                lib.accumulate_along_rays(w, None, ray_indices, n),
            )

    gc, go = torch.randn(n, values.shape[1], device=DEV), torch.randn(n, 1, device=DEV)

    def step():
        c, o = fwd()
        return torch.autograd.grad([c, o], [sig, val], [gc, go])

    benchmark.group = "cuda compositing fwd+bwd 2^20 samples, 2^14 rays, C=32"
    _timed(benchmark, step, rounds=30, warmup=3)
    record("cuda compositing fwd+bwd, 2^20 samples, C=32", impl, _rate(benchmark, COMP_SAMPLES), "M samples/s")


# -- deterministic backward ------------------------------------------------------------------------------
DETERMINISM = {"fused": False, "fused deterministic": True}


def _timed_backward(benchmark, outputs, leaves, grad_out, deterministic):
    """Times the backward alone (the forward's graph is kept); returns the gradients of one
    round, after checking that a second round gives the same bits when deterministic."""

    def backward():
        return torch.autograd.grad(outputs, leaves, grad_out, retain_graph=True)

    with deterministic_algorithms(deterministic):
        grads = _timed(benchmark, backward, rounds=30, warmup=3)
        if deterministic:
            again = backward()
            torch.cuda.synchronize()
            assert all(torch.equal(a, b) for a, b in zip(grads, again)), "deterministic backward changed its bits"
    return grads


@pytest.mark.parametrize("impl", list(DETERMINISM))
def test_cuda_triplane_backward_deterministic(benchmark, record, impl):
    planes, points = _triplane_inputs("3x64-128-256")
    forward, leaves = differentiable_runner("fused", planes, points)
    outputs = forward()
    grad_out = torch.randn_like(outputs)
    benchmark.group = "cuda triplane backward 3x64-128-256, atomic vs deterministic"
    _timed_backward(benchmark, outputs, [points, *leaves], grad_out, DETERMINISM[impl])
    record("cuda triplane backward 3x64-128-256", impl, _rate(benchmark, points.shape[1]), "Mpts/s")


@pytest.mark.parametrize("impl", list(DETERMINISM))
def test_cuda_hashgrid_backward_deterministic(benchmark, record, hash_data, impl):
    x, params, grad = hash_data
    p = params.detach().requires_grad_()
    outputs = ops.hashgrid_encode(x, p, HASH_CONFIG)
    benchmark.group = "cuda hashgrid backward (table gradient), atomic vs deterministic"
    _timed_backward(benchmark, outputs, [p], grad, DETERMINISM[impl])
    record("cuda hashgrid backward (table gradient)", impl, _rate(benchmark, HASH_N), "M pts/s")
