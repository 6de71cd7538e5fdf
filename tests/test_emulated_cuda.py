"""The CUDA launchers (csrc/cuda/*.cu) run on the CPU through the emulated CUDA runtime
(benchmarks/aids/emulated_cuda): every op forward and backward against the CPU launchers,
blocks and threads in two different random orders.

Kernels without atomics must give the same bits under both orders; gradients scattered
with float atomics (tri-plane planes, hash-grid table) only agree within rounding, unless
deterministic algorithms are asked for. Sizes are not multiples of the block size, empty,
and large. tests/test_cuda_vs_cpu.py runs the same launchers on a real GPU where one exists.
"""

import contextlib
import functools
import itertools
import os
import shutil
import subprocess

import op_bad_inputs
import pytest
import torch

from aids import emulated_cuda
from aids.op_comparison import (
    AABB,
    LEVEL_SETS,
    composite_case,
    deterministic_algorithms,
    outputs_and_grads,
    render_weight_cases,
    unit_points,
)
from aids.op_comparison import packed_samples as _packed
from aids.op_comparison import planes as _planes
from aids.op_comparison import points as _points
from aids.op_comparison import rays as _rays
from aids.op_comparison import shell_grid as _grid
from aids.op_comparison import table as _table
from s3d_fast import _ext, ops

SEEDS = (1, 2)


def run(fn, inputs, seed=None, deterministic=False):
    """fn(*inputs) on the CPU launchers (seed None) or on the emulated CUDA launchers in the
    launch order of ``seed``: its outputs and the gradients of its inputs under seeded
    cotangents."""
    on_cuda = contextlib.nullcontext() if seed is None else emulated_cuda.ops_on_emulated_cuda(seed)
    with on_cuda, deterministic_algorithms(deterministic):
        return outputs_and_grads(fn, inputs)


def assert_identical(a, b, what):
    assert (a is None) == (b is None), what
    if a is not None:
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what}: {m}")


def check(fn, inputs, atomic_grads=(), rtol=1e-10, atol=1e-10, deterministic=False, grad_atol=None):
    """The emulated launchers under two launch orders against the CPU launchers. Outputs and
    gradients are bit-identical between the orders, except the gradients at the indices in
    ``atomic_grads`` (float atomics) unless ``deterministic``; all match the CPU's, within
    ``atol`` or, for a gradient index in ``grad_atol``, its own absolute tolerance.
    Returns the CPU's results and the number of kernels launched."""
    cpu = run(fn, inputs)
    before = emulated_cuda.counts()["launches"]
    first, second = (run(fn, inputs, seed, deterministic) for seed in SEEDS)
    launched = emulated_cuda.counts()["launches"] - before
    for kind, index in (("output", 0), ("gradient", 1)):
        assert len(first[index]) == len(cpu[index])
        for i, (a, b, c) in enumerate(zip(first[index], second[index], cpu[index])):
            what = f"{kind} {i}"
            if kind == "gradient" and i in atomic_grads and not deterministic:
                if a is not None:
                    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, w=what: f"{w}: {m}")
            else:
                assert_identical(a, b, f"{what} under two launch orders")
            assert (a is None) == (c is None), what
            if a is not None:
                tol = (grad_atol or {}).get(i, atol) if kind == "gradient" else atol
                torch.testing.assert_close(
                    a, c, rtol=rtol, atol=tol, equal_nan=True, msg=lambda m, w=what: f"{w} against the CPU: {m}"
                )
    return cpu, launched


# -- the real ops' interface --------------------------------------------------------------------------
def _schemas(namespace):
    """Each op of ``namespace`` by name: its schema without the namespace."""
    prefix = namespace + "::"
    schemas = torch._C._jit_get_all_schemas()
    return {s.name[len(prefix) :]: str(s)[len(prefix) :] for s in schemas if s.name.startswith(prefix)}


def test_every_op_has_the_real_ops_schema():
    # s3d_fast.ops call the routed ops as they call torch.ops.s3d_fast's: check=False included.
    _ext.load()
    emulated_cuda.load()
    real = {name: s for name, s in _schemas("s3d_fast").items() if name != "backends"}
    emulated = _schemas(emulated_cuda.NAME)
    assert "occgrid_march" in real and "bool check=True" in real["occgrid_march"]
    assert {name: emulated.get(name) for name in real} == real
    assert set(emulated) - set(real) == {"set_launch_seed", "counts"}


# -- tri-plane sampling -------------------------------------------------------------------------------
PLANE_REDUCES = ("sum", "mean", "product", "concat")


def _triplane(**kw):
    return lambda pts, planes: ops.triplane_sample(planes, pts, **kw)


@pytest.mark.parametrize("plane_reduce,scale_reduce", list(itertools.product(PLANE_REDUCES, ("concat", "sum"))))
@pytest.mark.parametrize(
    "align_corners,padding,axes", list(itertools.product((False, True), ("zeros", "border"), ("xy_xz_yz", "eg3d")))
)
def test_triplane_every_mode(plane_reduce, scale_reduce, align_corners, padding, axes):
    kw = dict(
        plane_reduce=plane_reduce, scale_reduce=scale_reduce, align_corners=align_corners, padding=padding, axes=axes
    )
    _, launched = check(_triplane(**kw), (_points(), _planes()), atomic_grads=(1, 2, 3))
    assert launched == 2 * (1 + 1 + 3)  # per order: forward, point gradients, one plane kernel per scale


def test_triplane_empty_launches_nothing():
    # CUDA refuses a launch of zero blocks, so the launchers must not launch at all.
    cpu, launched = check(_triplane(), (_points(n=0), _planes()), atomic_grads=(1, 2, 3))
    assert launched == 0 and cpu[0][0].shape == (2, 0, 33)


def test_triplane_float32_large():
    # 2^16 + 3 points on the benchmark's 64/128/256 planes.
    planes = _planes(shapes=((64, 64), (128, 128), (256, 256)), batch=1, channels=32, seed=2, dtype=torch.float32)
    pts = _points(batch=1, n=(1 << 16) + 3, seed=3, spread=1.05, dtype=torch.float32)
    check(_triplane(plane_reduce="product"), (pts, planes), atomic_grads=(1, 2, 3), rtol=1e-4, atol=1e-4)


# -- hash-grid encoding --------------------------------------------------------------------------------
# Partly outside [0, 1]: cells wrap there, as in tiny-cuda-nn.
_unit_points = functools.partial(unit_points, lo=-0.2, hi=1.2)


# The README grid's point gradients in float32 sum terms of up to ~5e4 (the finest level's
# scale, 7e3, times table entries and cotangents) that can cancel to ~0.1: one rounding
# there is 2^-8 absolute, which the CPU and CUDA launchers (compiled apart, with their
# own fused multiply-adds) need not share.
POINT_GRAD_ATOL = 2e-2


def _hashgrid(kw):
    return lambda x, params: ops.hashgrid_encode(x, params, **kw)


@pytest.mark.parametrize("dims,features", list(itertools.product((1, 2, 3), (1, 2, 4, 8))))
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("levels", list(LEVEL_SETS))
def test_hashgrid_every_compiled_shape(levels, dims, features, interpolation):
    kw = dict(LEVEL_SETS[levels], n_features_per_level=features, interpolation=interpolation)
    _, launched = check(_hashgrid(kw), (_unit_points(700, dims), _table(dims, kw)), atomic_grads=(1,))
    assert launched == 2 * 3  # per order: forward, table gradient, point gradients


def test_hashgrid_empty_and_float32_large():
    kw = dict(LEVEL_SETS["mixed"], n_features_per_level=2)
    cpu, launched = check(_hashgrid(kw), (_unit_points(0, 3), _table(3, kw)), atomic_grads=(1,))
    assert launched == 0 and cpu[0][0].shape == (0, 12) and not cpu[1][1].any()
    # The README's configuration at 2^16 + 3 points: coarse entries take thousands of adds.
    kw = dict(n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5)
    inputs = (_unit_points((1 << 16) + 3, 3, seed=5, dtype=torch.float32), _table(3, kw, seed=6, dtype=torch.float32))
    check(_hashgrid(kw), inputs, atomic_grads=(1,), rtol=1e-4, atol=1e-4, grad_atol={0: POINT_GRAD_ATOL})


# -- MLP -------------------------------------------------------------------------------------------------


def _mlp_inputs(n, dims, in_ones=0, dtype=torch.float64, seed=0):
    """x (n, dims[0]) and the weights of dims[0] + in_ones -> dims[1] -> ... -> dims[-1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dims[0], generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    fan_in = [dims[0] + in_ones, *dims[1:-1]]
    ws = [
        ((torch.rand(o, i, generator=g, dtype=torch.float64) * 2 - 1) / i**0.5).to(dtype).requires_grad_()
        for i, o in zip(fan_in, dims[1:])
    ]
    return (x, *ws)


def _mlp(activation, output_activation, in_ones):
    return lambda x, *ws: ops.mlp(x, list(ws), activation, output_activation, in_ones)


@pytest.mark.parametrize(
    "dims,in_ones,activation,output_activation",
    [
        ((31, 64, 64, 3), 1, "relu", "sigmoid"),
        ((32, 64, 16), 0, "relu", "none"),
        ((5, 128, 17), 2, "tanh", "exponential"),
        ((20, 48, 48, 48, 5), 0, "leakyrelu", "relu"),
        ((9, 33), 0, "none", "tanh"),
    ],
)
def test_mlp(dims, in_ones, activation, output_activation):
    inputs = _mlp_inputs(131, dims, in_ones)
    n_weights = len(inputs) - 1
    _, launched = check(_mlp(activation, output_activation, in_ones), inputs, atomic_grads=range(1, n_weights + 1))
    # per order: layout + pad + forward, then layout + pad + backward rows + one per layer
    assert launched == 2 * (3 + 3 + n_weights)


def test_mlp_empty_and_float32_large():
    dims = (32, 64, 64, 3)
    cpu, launched = check(_mlp("relu", "sigmoid", 0), _mlp_inputs(0, dims), atomic_grads=(1, 2, 3))
    assert launched == 0 and cpu[0][0].shape == (0, 3) and not any(g.any() for g in cpu[1][1:])
    inputs = _mlp_inputs((1 << 14) + 3, dims, dtype=torch.float32, seed=4)
    check(_mlp("relu", "sigmoid", 0), inputs, atomic_grads=(1, 2, 3), rtol=1e-4, atol=1e-4)


# -- volume rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("layout", ["packed", "batched", "prefix"])
def test_render_weight(index_dtype, layout):
    for fn, inputs in render_weight_cases(index_dtype, layout):
        check(fn, inputs)


@pytest.mark.parametrize("kind", ["density", "alpha", "weight"])
@pytest.mark.parametrize("early_stop_eps", [0.0, 1e-3, 0.3])
@pytest.mark.parametrize("channels", [None, 3, 5, 16, 32, 64])  # compile-time widths 3/16/32/64, run-time 5
def test_composite(kind, early_stop_eps, channels):
    check(*composite_case(kind, early_stop_eps, channels))


def test_compositing_empty_and_float32_large():
    g = torch.Generator().manual_seed(4)
    # Rays without samples, and no rays at all.
    none = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    cpu, _ = check(lambda s: ops.composite(s, None, torch.zeros(0, dtype=torch.long), 7, none, none), (none,))
    assert cpu[0][1].shape == (7, 1) and not cpu[0][1].any()
    _, launched = check(
        lambda s: ops.render_weight_from_alpha(s, ray_indices=torch.zeros(0, dtype=torch.long), n_rays=0), (none,)
    )
    assert launched == 0
    # 2^18 samples over 2^13 + 5 rays, 32 channels, densities from 1e-3 to 1e4.
    ri, t0, t1, n = _packed(n_rays=(1 << 13) + 5, max_per_ray=64, seed=6)
    sig = (10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 7 - 3)).float().requires_grad_()
    val = torch.rand(n, 32, generator=g).requires_grad_()
    check(
        lambda s, v, a, b: ops.composite(s, v, ri, (1 << 13) + 5, a, b, early_stop_eps=1e-4),
        (sig, val, t0.float(), t1.float()),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_ray_offsets_and_their_errors(index_dtype):
    emulated = emulated_cuda.load()
    cpu = _ext.load()
    ri, _, _, _ = _packed(index_dtype=index_dtype)
    for indices, n_rays in ((ri, 300), (ri, 310), (ri[:0], 7), (ri.flip(0), 300), (ri, 100)):
        for seed in SEEDS:
            emulated.set_launch_seed(seed)
            offsets, error = emulated.ray_offsets(indices, n_rays)
            cpu_offsets, cpu_error = cpu.ray_offsets(indices, n_rays)
            assert error == cpu_error
            if error == 0:
                assert torch.equal(offsets, cpu_offsets)
    assert emulated.ray_offsets(ri.flip(0), 300)[1] != 0 and emulated.ray_offsets(ri, 100)[1] != 0


# -- occupancy grid -----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels,n_grids", [(1, 1), (2, 3)])
@pytest.mark.parametrize("cone_angle", [0.0, 0.02])
@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_occgrid_march(levels, n_grids, cone_angle, blocks, dtype):
    grid = _grid(levels, n_grids)
    n = 1000 + 3  # 8 blocks of 128 threads, the last one with 107 idle
    o, d = _rays(n)
    g = torch.Generator().manual_seed(9)
    near = torch.rand(n, generator=g, dtype=torch.float64)
    far = near + 1 + torch.rand(n, generator=g, dtype=torch.float64) * 4
    gi = None if n_grids == 1 else torch.arange(n) % n_grids
    bb = grid.block_bits if blocks else None

    def march(o, d, near, far):
        return ops.occgrid_march(grid.bits, grid.resolution, AABB, o, d, near, far, 0.01, cone_angle, gi, block_bits=bb)

    inputs = tuple(x.to(dtype) for x in (o, d, near, far))
    cpu, _ = check(march, inputs, rtol=0, atol=0)  # the same body, no rounding to differ
    assert cpu[0][0].numel() > 5000
    empty = tuple(x[:0] for x in inputs)
    gi = None if n_grids == 1 else gi[:0]
    cpu, launched = check(march, empty)
    assert launched == 0 and cpu[0][3].tolist() == [0]


# -- bad inputs, half precision, second derivatives ---------------------------------------------------
DIRECT_BAD_INPUTS = (
    op_bad_inputs.render_weight_cases,
    op_bad_inputs.composite_cases,
    op_bad_inputs.ray_offsets_cases,
    op_bad_inputs.triplane_cases,
    op_bad_inputs.hashgrid_cases,
    op_bad_inputs.occgrid_cases,
)


def _outcome(call):
    try:
        call()
    except (RuntimeError, ValueError, TypeError) as e:
        return type(e).__name__, str(e).splitlines()[0]
    return "returned", ""


def test_bad_inputs_end_in_the_cpu_ops_errors():
    """tests/op_bad_inputs.py's cases, called on the emulated ops directly and through
    s3d_fast.ops (check=False where those pass it), end as they do on the CPU ops."""
    emulated = emulated_cuda.load()

    def outcomes(m):
        cases = [case for cases_of in DIRECT_BAD_INPUTS for case in cases_of(m)] + op_bad_inputs.python_op_cases()
        return [(op, what, _outcome(call)) for op, what, call, _ in cases]

    cpu = outcomes(_ext.load())
    with emulated_cuda.ops_on_emulated_cuda(SEEDS[0]):
        on_emulated = outcomes(emulated)
    assert on_emulated == cpu
    assert {op for op, _, _ in cpu} >= {"occgrid_march", "composite_backward", "ops.occgrid_march", "ops.composite"}


def test_half_inputs_run_on_the_emulated_launchers():
    # s3d_fast.ops widen float16/bfloat16 to float32 around the kernels (ops/_half.py).
    planes = [p.detach().to(torch.bfloat16).requires_grad_() for p in _planes()]
    pts = _points().detach().to(torch.bfloat16).requires_grad_()
    cpu, launched = check(_triplane(), (pts, planes), atomic_grads=(1, 2, 3), rtol=2e-2, atol=2e-2)
    assert launched > 0 and cpu[0][0].dtype == torch.bfloat16
    ri, t0, t1, n = _packed(seed=2)
    sig = (torch.rand(n, dtype=torch.float64) * 30).half().requires_grad_()
    cpu, launched = check(
        lambda s: ops.render_weight_from_density(t0.half(), t1.half(), s, ray_indices=ri, n_rays=300),
        (sig,),
        rtol=1e-3,
        atol=1e-3,
    )
    assert launched > 0 and cpu[0][0].dtype == torch.float16


def test_second_derivatives_are_refused_on_the_emulated_launchers():
    # ops/_first_order.py links a create_graph gradient to a node that raises.
    kw = dict(LEVEL_SETS["mixed"], n_features_per_level=2)
    x, table = _unit_points(50, 3), _table(3, kw)
    with emulated_cuda.ops_on_emulated_cuda(SEEDS[0]):
        before = emulated_cuda.counts()["launches"]
        (grad_x,) = torch.autograd.grad(ops.hashgrid_encode(x, table, **kw).square().sum(), x, create_graph=True)
        assert emulated_cuda.counts()["launches"] > before
        with pytest.raises(RuntimeError, match="hashgrid_encode: second derivatives are not supported"):
            grad_x.sum().backward()


# -- what the emulation refuses ------------------------------------------------------------------------
REFUSED = {
    "__shared__": "__shared__ float tile[256];\n  tile[threadIdx.x] = *x;",
    "__syncthreads": "__syncthreads();",
    "__shfl_down_sync": "*x += __shfl_down_sync(0xffffffffu, *x, 1);",
    "__ballot_sync": "if (__ballot_sync(0xffffffffu, *x > 0)) *x = 0;",
}


def _compile_kernel(body: str, tmp_path):
    source = tmp_path / "kernel.cpp"
    source.write_text(
        '#include "cuda_runtime.h"\n'
        "template <typename T>\n"
        f"__global__ void kernel(T* x) {{\n  {body}\n}}\n"
        "void launch(float* x) { S3D_LAUNCH(dim3(2), 32, nullptr, kernel<float>)(x); }\n"
    )
    compiler = os.environ.get("CXX", "c++")
    assert shutil.which(compiler), f"no C++ compiler {compiler!r}"
    return subprocess.run(
        [compiler, "-std=c++17", "-fsyntax-only", f"-I{emulated_cuda.CSRC}", str(source)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("name", list(REFUSED))
def test_kernels_that_need_threads_to_cooperate_do_not_compile(name, tmp_path):
    # Sequential threads are a sound emulation only while threads do not cooperate.
    done = _compile_kernel(REFUSED[name], tmp_path)
    assert done.returncode != 0 and f"{name} is not emulated" in done.stderr, done.stderr[-2000:]
    assert _compile_kernel("*x += 1;", tmp_path).returncode == 0


# -- deterministic mode --------------------------------------------------------------------------------


def _float_atomics_during(fn):
    before = emulated_cuda.counts()["float_atomic_adds"]
    result = fn()
    return emulated_cuda.counts()["float_atomic_adds"] - before, result


def check_deterministic(fn, inputs, grad_index, rtol, atol):
    """Under torch.use_deterministic_algorithms(True) the emulated backward uses no float
    atomics and gives the same bits under two launch orders, close to the CPU's; without
    it, the atomic scatter's float32 sums change with the order (so the orders do differ)."""
    atomics, _ = _float_atomics_during(lambda: check(fn, inputs, rtol=rtol, atol=atol, deterministic=True))
    assert atomics == 0
    atomics, (first, second) = _float_atomics_during(lambda: [run(fn, inputs, seed)[1][grad_index] for seed in SEEDS])
    assert atomics > 0
    if first.dtype == torch.float32:
        assert not torch.equal(first, second), "the atomic scatter gave the same bits under two launch orders"


@pytest.mark.parametrize("plane_reduce", PLANE_REDUCES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triplane_deterministic_backward(plane_reduce, dtype):
    # 3000 points on 8^2 and 5x12 planes: dozens of contributions per texel.
    planes = _planes(shapes=((8, 8), (5, 12)), batch=2, channels=11, seed=5, dtype=dtype)
    pts = _points(batch=2, n=3000, seed=6, spread=1.1, dtype=dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    kw = dict(plane_reduce=plane_reduce, scale_reduce="sum", padding="border" if plane_reduce == "mean" else "zeros")
    check_deterministic(_triplane(**kw), (pts, planes), grad_index=1, rtol=tol, atol=tol)


@pytest.mark.parametrize("dims,features", [(1, 1), (2, 8), (3, 2), (3, 4)])
@pytest.mark.parametrize("levels", ["dense", "hashed", "mixed"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hashgrid_deterministic_backward(levels, dims, features, dtype):
    kw = dict(LEVEL_SETS[levels], n_features_per_level=features, interpolation="smoothstep")
    inputs = (_unit_points(3000, dims, dtype=dtype), _table(dims, kw, dtype=dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    check_deterministic(_hashgrid(kw), inputs, grad_index=1, rtol=tol, atol=tol)


def test_deterministic_backward_empty_and_large():
    kw = dict(LEVEL_SETS["mixed"], n_features_per_level=2)
    _, launched = check(_hashgrid(kw), (_unit_points(0, 3), _table(3, kw)), deterministic=True)
    assert launched == 0
    _, launched = check(_triplane(), (_points(n=0), _planes()), deterministic=True)
    assert launched == 0
    # The README's hash grid at 2^15 + 3 points: 2^21 contributions sorted into 2^19-entry levels.
    kw = dict(n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5)
    inputs = (_unit_points((1 << 15) + 3, 3, seed=5, dtype=torch.float32), _table(3, kw, seed=6, dtype=torch.float32))
    check(_hashgrid(kw), inputs, rtol=1e-4, atol=1e-4, deterministic=True, grad_atol={0: POINT_GRAD_ATOL})
