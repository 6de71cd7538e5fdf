"""What the tests that run an op on two backends share: seeded inputs for every op, one
call's outputs and input gradients, and the deterministic-algorithms switch.

Used by tests/test_cuda_vs_cpu.py and tests/test_cuda_deterministic.py (a GPU against
the CPU), tests/test_emulated_cuda.py (the emulated CUDA launchers against the CPU's)
and benchmarks/bench_cuda.py.
"""

from __future__ import annotations

import contextlib

import torch

from s3d_fast.nn import OccupancyGrid
from s3d_fast.ops import HashGridConfig


@contextlib.contextmanager
def deterministic_algorithms(on: bool = True):
    """``torch.use_deterministic_algorithms(on)`` within the block, the setting before it after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(on)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


# -- one call, outputs and gradients ---------------------------------------------------------------


def fresh(x, device="cpu"):
    """A copy of ``x`` (tensors, possibly in lists, tuples and dicts) on ``device``,
    detached, each tensor requiring grad as it did."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device, copy=True).requires_grad_(x.requires_grad)
    if isinstance(x, (list, tuple)):
        return type(x)(fresh(v, device) for v in x)
    if isinstance(x, dict):
        return {k: fresh(v, device) for k, v in x.items()}
    return x


def grad_leaves(xs):
    """The tensors of ``xs`` (nested lists, tuples and dicts) that require grad, in order."""
    out = []
    for x in xs:
        if isinstance(x, torch.Tensor):
            if x.requires_grad:
                out.append(x)
        elif isinstance(x, (list, tuple)):
            out += grad_leaves(x)
        elif isinstance(x, dict):
            out += grad_leaves(list(x.values()))
    return out


def outputs_and_grads(fn, inputs, device="cpu", cotangent_seed=0):
    """fn(*inputs) on fresh copies of the inputs on ``device``: its outputs and the gradients
    of every input that requires grad, under random cotangents drawn on the CPU (the same
    on every device), all on the CPU."""
    xs = fresh(inputs, device)
    outs = fn(*xs)
    outs = [outs] if isinstance(outs, torch.Tensor) else list(outs)
    for o in outs:
        assert o.device.type == torch.device(device).type, f"output on {o.device}, expected {device}"
    diff = [o for o in outs if o.requires_grad]
    wrt = grad_leaves(xs)
    grads = []
    if diff and wrt:
        g = torch.Generator().manual_seed(cotangent_seed)
        cot = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype).to(o.device) for o in diff]
        grads = list(torch.autograd.grad(diff, wrt, cot, allow_unused=True))
    return [o.detach().cpu() for o in outs], [None if x is None else x.cpu() for x in grads]


# -- tri-plane sampling ------------------------------------------------------------------------------


def planes(shapes=((6, 7), (9, 5), (16, 16)), batch=2, channels=11, seed=0, dtype=torch.float64, grad=True):
    """Random channels-last planes, one (batch, 3, H, W, channels) tensor per scale.
    11 channels: a full chunk of 8 plus a ragged tail in every kernel loop."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, h, w, channels, generator=g, dtype=dtype).requires_grad_(grad) for h, w in shapes]


def points(batch=2, n=300, seed=1, spread=1.3, dtype=torch.float64, grad=True):
    """(batch, n, 3) points uniform in [-spread, spread]^3. 2 x 300 points: 3 blocks of 256
    threads, the last one partly idle."""
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(batch, n, 3, generator=g, dtype=dtype) * 2 - 1) * spread).requires_grad_(grad)


# -- hash-grid encoding ------------------------------------------------------------------------------

# Dense levels only, hashed levels only, and both.
LEVEL_SETS = {
    "dense": dict(n_levels=4, base_resolution=3, per_level_scale=1.5, log2_hashmap_size=20),
    "hashed": dict(n_levels=4, base_resolution=40, per_level_scale=1.5, log2_hashmap_size=8),
    "mixed": dict(n_levels=6, base_resolution=4, per_level_scale=1.8, log2_hashmap_size=10),
}


def table(dims, kw, seed=0, dtype=torch.float64):
    """The flat parameter table of the hash grid ``HashGridConfig(**kw)`` over ``dims``
    dimensions, uniform in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    n = HashGridConfig(**kw).layout(dims).n_params
    return (torch.rand(n, generator=g, dtype=dtype) * 2 - 1).requires_grad_()


def unit_points(n, dims, seed=1, lo=0.0, hi=1.0, dtype=torch.float64):
    """(n, dims) points uniform in [lo, hi]^dims (outside [0, 1] the cells wrap, as in tiny-cuda-nn)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, dims, generator=g, dtype=dtype) * (hi - lo) + lo).requires_grad_()


# -- volume rendering --------------------------------------------------------------------------------


def packed_samples(n_rays=300, max_per_ray=40, seed=0, index_dtype=torch.int64):
    """Random packed samples sorted by ray, some rays without any: (ray_indices, t_starts,
    t_ends, sample count), float64 intervals."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, max_per_ray + 1, (n_rays,), generator=g)
    counts[:5] = 0
    ray_indices = torch.repeat_interleave(torch.arange(n_rays), counts).to(index_dtype)
    n = int(counts.sum())
    steps = torch.rand(n, generator=g, dtype=torch.float64) * 0.05 + 0.005
    start = torch.repeat_interleave(torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]]), counts)
    csum = steps.cumsum(0)
    t_ends = csum - (csum - steps)[start] + 0.5  # per-ray cumulative sum of the steps
    return ray_indices, t_ends - steps, t_ends, n


def render_weight_cases(index_dtype, layout):
    """(fn, inputs) pairs calling ``ops.render_weight_from_density`` and ``_from_alpha``:
    on 300 packed rays (``layout`` "packed", or "prefix" with a prefix transmittance) or on
    64 x 32 batched samples ("batched"), float64."""
    from s3d_fast import ops

    ri, t0, t1, n = packed_samples(index_dtype=index_dtype)
    g = torch.Generator().manual_seed(1)
    sig = (torch.rand(n, generator=g, dtype=torch.float64) * 30).requires_grad_()
    alpha = (torch.rand(n, generator=g, dtype=torch.float64) * 0.9).requires_grad_()
    if layout == "batched":
        t = torch.sort(torch.rand(64, 33, generator=g, dtype=torch.float64), dim=1).values
        bsig = (torch.rand(64, 32, generator=g, dtype=torch.float64) * 30).requires_grad_()
        return [
            (ops.render_weight_from_density, (t[:, :-1].contiguous(), t[:, 1:].contiguous(), bsig)),
            (ops.render_weight_from_alpha, ((bsig.detach() / 40).requires_grad_(),)),
        ]
    extra = dict(prefix_trans=torch.rand(n, generator=g, dtype=torch.float64)) if layout == "prefix" else {}
    return [
        (
            lambda a, b, s, r, e: ops.render_weight_from_density(a, b, s, ray_indices=r, n_rays=300, **e),
            (t0, t1, sig, ri, extra),
        ),
        (lambda a, r, e: ops.render_weight_from_alpha(a, ray_indices=r, n_rays=300, **e), (alpha, ri, extra)),
    ]


def composite_case(kind, early_stop_eps, channels):
    """(fn, inputs) calling ``ops.composite`` on 300 packed rays of ``kind`` inputs
    (density, alpha or weight) with ``channels`` values (None: opacity and depth only), float64."""
    from s3d_fast import ops

    ri, t0, t1, n = packed_samples(seed=2)
    g = torch.Generator().manual_seed(3)
    scale = {"density": 30, "alpha": 0.9, "weight": 0.05}[kind]
    inputs = (torch.rand(n, generator=g, dtype=torch.float64) * scale).requires_grad_()
    values = None if channels is None else torch.randn(n, channels, generator=g, dtype=torch.float64).requires_grad_()
    bkgd = None if channels is None else torch.rand(channels, generator=g, dtype=torch.float64)

    def composite(x, v, r, a, b, bg):
        return ops.composite(x, v, r, 300, a, b, render_bkgd=bg, kind=kind, early_stop_eps=early_stop_eps)

    return composite, (inputs, values, ri, t0, t1, bkgd)


# -- occupancy grid ----------------------------------------------------------------------------------
AABB = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def shell_density(x, g=None, r=0.6, width=0.15):
    """A spherical shell of radius ``r`` (moved by 0.2 per grid index ``g``): density 50 at its middle."""
    if g is not None:
        x = x - 0.2 * g[:, None].to(x.dtype)
    return torch.exp(-(((x.norm(dim=-1) - r) / width) ** 2)) * 50


def shell_grid(levels=1, n_grids=1, resolution=32):
    """An occupancy grid over ``AABB`` marked from ``shell_density``."""
    grid = OccupancyGrid(AABB, resolution, levels=levels, n_grids=n_grids)
    return grid.from_density(lambda x, g: shell_density(x, g), threshold=1e-2, dilate=1)


def rays(n=2000, seed=0, dtype=torch.float64):
    """(origins, unit directions): rays from radius 3 towards the shell, plus an
    axis-parallel one, one starting inside the grid and one that misses it."""
    gen = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    o = o / o.norm(dim=-1, keepdim=True) * 3
    d = -o + torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.6
    d = d / d.norm(dim=-1, keepdim=True)
    o[0], d[0] = torch.tensor([-3.0, 0.1, 0.2]), torch.tensor([1.0, 0.0, 0.0])  # axis-parallel
    o[1], d[1] = torch.tensor([0.05, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])  # starts inside
    o[2], d[2] = torch.tensor([0.0, 3.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])  # misses
    return o.to(dtype), d.to(dtype)
