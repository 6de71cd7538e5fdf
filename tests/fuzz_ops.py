"""Property-based fuzzing of every op in ``s3d_fast.ops`` (and of the raw
``torch.ops.s3d_fast`` calls that index with caller-given offsets), run by
tests/test_fuzz_ops.py one op per child process, so that a crash fails a test
instead of killing pytest.

Hypothesis draws shapes (zero-sized included), strides, dtypes (float16 and
bfloat16 too), devices, scales, and NaN / inf / huge / subnormal values. Each
example either raises a clear error (ValueError, TypeError or RuntimeError) or
matches the pure-PyTorch reference in float64 within the dtype's tolerance, with
NaN exactly where the semantics of docs/kernels/*.md put it; backward passes are
compared too when every input is finite.

``python tests/fuzz_ops.py OP [--examples N]`` runs one property with a fixed
seed (``derandomize``) and prints, before each example, a JSON line with its
draws, then a last JSON line with the outcome; ``--list`` names the properties.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

import torch
from fuzz_tensors import DEVICES, DTYPES, HALF, INF, NAN, RTOL, all_finite, assert_matches, make, specials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3d_fast import _ext, ops
from s3d_fast.ops import reference
from s3d_fast.ops.mlp_op import ACTIVATIONS as MLP_ACTIVATIONS
from s3d_fast.ops.occupancy_grid import block_bits_of

DEFAULT_EXAMPLES = 50
CLEAR_ERRORS = (ValueError, TypeError, RuntimeError)


class Draws:
    """Draws of one example, printed (flushed) before the risky calls so a
    crash still shows the example that caused it."""

    def __init__(self, data, op: str):
        self.data, self.op, self.seen = data, op, {}

    def __call__(self, strategy, label: str):
        value = self.data.draw(strategy, label=label)
        self.seen[label] = value if isinstance(value, (int, float, bool, str, type(None))) else repr(value)
        return value

    def call(self, fn, *args, **kwargs):
        """The op under test: its clear errors become ``Refused``; anything else propagates."""
        print(json.dumps({"op": self.op, "example": self.seen}, default=str), flush=True)
        try:
            return fn(*args, **kwargs)
        except CLEAR_ERRORS as error:
            raise Refused(f"{type(error).__name__}: {error}") from error


class Refused(Exception):
    """The op refused the example with a clear error (an accepted outcome)."""


def _gen(d: Draws) -> torch.Generator:
    return torch.Generator().manual_seed(d(st.integers(0, 2**31 - 1), "seed"))


def _dtype(d: Draws, dtypes=DTYPES):
    return d(st.sampled_from(dtypes), "dtype")


def _device(d: Draws):
    return d(st.sampled_from(DEVICES), "device")


def _grad_rtol(dtype):
    return max(RTOL[dtype], 1e-7) * 10  # backward sums more terms than forward


# -- tri-plane ------------------------------------------------------------------


def prop_triplane_sample(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    batch, n = d(st.integers(0, 2), "B"), d(st.integers(0, 24), "N")
    channels = d(st.integers(1, 4), "C")
    sizes = d(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 7)), min_size=1, max_size=3), "HW per scale")
    magnitude = d(st.sampled_from([1.0, 1e-3, 1e3]), "plane magnitude")
    kw = dict(
        plane_reduce=d(st.sampled_from(["sum", "mean", "product", "concat"]), "plane_reduce"),
        scale_reduce=d(st.sampled_from(["concat", "sum"]), "scale_reduce"),
        align_corners=d(st.booleans(), "align_corners"),
        padding=d(st.sampled_from(["zeros", "border"]), "padding"),
        axes=d(st.sampled_from(["xy_xz_yz", "eg3d"]), "axes"),
    )
    spread = d(st.sampled_from([1.0, 1.5, 50.0]), "point spread")
    planes = [
        make(
            (batch, 3, h, w, channels),
            dtype,
            device,
            gen,
            high=magnitude,
            normal=True,
            contiguous=d(st.booleans(), "c"),
        )
        for h, w in sizes
    ]
    points = make(
        (batch, n, 3), dtype, device, gen, -spread, spread, d(specials(), "point specials"), d(st.booleans(), "c")
    )
    planes = [p.requires_grad_(True) for p in planes]
    points.requires_grad_(True)
    out = d.call(ops.triplane_sample, planes, points, **kw)
    ref_planes = [p.detach().double().requires_grad_(True) for p in planes]
    ref_points = points.detach().double().requires_grad_(True)
    ref = reference.triplane_sample(ref_planes, ref_points, **kw)
    coords = points.detach()
    finite_rows = torch.isfinite(coords).all(-1)  # (B, N)
    assert_matches(out[finite_rows], ref[finite_rows], dtype, "triplane_sample at finite points")
    nan_rows = torch.isnan(coords).any(-1)
    inf_rows = ~finite_rows & ~nan_rows
    if kw["padding"] == "zeros":
        # NaN exactly where grid_sample gives NaN; +-inf falls outside the planes: 0, not grid_sample's NaN.
        assert torch.equal(torch.isnan(out[nan_rows]), torch.isnan(ref[nan_rows])), "NaN point: NaN pattern"
        assert all_finite(out[inf_rows]), "an infinite point gave a non-finite feature"
    else:
        # Border padding clamps +-inf to the edge as grid_sample does; a NaN point gives NaN (not the border).
        assert_matches(out[inf_rows], ref[inf_rows], dtype, "triplane_sample at infinite points (border)")
        assert torch.isnan(out[nan_rows]).any(-1).all(), "a NaN point gave no NaN feature"
    grad = make(out.shape, dtype, device, gen, -1.0, 1.0)
    g_out = torch.autograd.grad(out, [points, *planes], grad, allow_unused=True)
    if all_finite(coords) and dtype not in HALF:
        g_ref = torch.autograd.grad(ref, [ref_points, *ref_planes], grad.double(), allow_unused=True)
        for i, (a, b) in enumerate(zip(g_out, g_ref)):
            assert_matches(a, b, dtype, f"triplane_sample gradient {i}", rtol=_grad_rtol(dtype))


# -- hash grid ------------------------------------------------------------------


def prop_hashgrid_encode(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    config = ops.HashGridConfig(
        n_levels=d(st.integers(1, 4), "n_levels"),
        n_features_per_level=d(st.sampled_from([1, 2, 4, 8]), "n_features_per_level"),
        log2_hashmap_size=d(st.integers(1, 10), "log2_hashmap_size"),
        base_resolution=d(st.integers(1, 16), "base_resolution"),
        per_level_scale=d(st.floats(1.0, 3.0), "per_level_scale"),
        interpolation=d(st.sampled_from(["linear", "smoothstep"]), "interpolation"),
        grid_type=d(st.sampled_from(["hash", "dense"]), "grid_type"),
    )
    dims = d(st.integers(1, 3), "D")
    lead = d(st.lists(st.integers(0, 6), max_size=2), "leading shape")
    low, high = d(st.sampled_from([(0.0, 1.0), (-3.0, 4.0), (-1e6, 1e6)]), "x range")
    x = make((*lead, dims), dtype, device, gen, low, high, d(specials(), "x specials"), d(st.booleans(), "c"))
    params = make((config.layout(dims).n_params,), dtype, device, gen, -1.0, 1.0)
    x.requires_grad_(True)
    params.requires_grad_(True)
    out = d.call(ops.hashgrid_encode, x, params, config)
    # Where a coordinate saturates depends on the dtype it is computed in (float32 for half inputs).
    wide = torch.float32 if dtype in HALF else dtype
    ref_x = x.detach().to(wide).requires_grad_(True)
    ref_params = params.detach().to(wide).requires_grad_(True)
    ref = reference.hashgrid_encode(ref_x, ref_params, config)
    assert_matches(out, ref, dtype, "hashgrid_encode")
    grad = make(out.shape, dtype, device, gen, -1.0, 1.0)
    g_x, g_params = torch.autograd.grad(out, (x, params), grad)
    if all_finite(x) and high <= 4.0 and dtype not in HALF:
        r_x, r_params = torch.autograd.grad(ref, (ref_x, ref_params), grad.to(wide))
        assert_matches(g_params, r_params, dtype, "hashgrid_encode params gradient", rtol=_grad_rtol(dtype))
        assert_matches(g_x, r_x, dtype, "hashgrid_encode x gradient", rtol=_grad_rtol(dtype))
    else:
        assert g_x.shape == x.shape and g_params.shape == params.shape


# -- MLP ------------------------------------------------------------------------

# No values that overflow float32 within a few layers (their inf - inf would depend on
# the summation order).
_MLP_SPECIALS = (NAN, INF, -INF, 3e9, -3e9, 1e-40, 0.0, -0.0)


def prop_mlp(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    n_layers = d(st.integers(1, 4), "layers")
    width = d(st.sampled_from([16, 32, 48, 64, 128]), "width")
    in_cols, in_ones = d(st.integers(0, 40), "in_cols"), d(st.integers(0, 3), "in_ones")
    if in_cols + in_ones == 0:
        in_ones = 1
    out_cols = d(st.integers(1, 20), "out_cols")
    activation = d(st.sampled_from(MLP_ACTIVATIONS), "activation")
    output_activation = d(st.sampled_from(MLP_ACTIVATIONS), "output_activation")
    lead = d(st.lists(st.integers(0, 70), max_size=2), "leading shape")
    x = make(
        (*lead, in_cols), dtype, device, gen, -2.0, 2.0, d(specials(_MLP_SPECIALS), "x specials"), d(st.booleans(), "c")
    )
    dims = [in_cols + in_ones] + [width] * (n_layers - 1) + [out_cols]
    ws = [make((o, i), dtype, device, gen, -((1.0 / i) ** 0.5), (1.0 / i) ** 0.5) for i, o in zip(dims, dims[1:])]
    for t in (x, *ws):
        t.requires_grad_(True)
    kw = dict(activation=activation, output_activation=output_activation, in_ones=in_ones)
    out = d.call(ops.mlp, x, ws, **kw)
    wide = torch.float32 if dtype in HALF else dtype
    ref_x = x.detach().to(wide).requires_grad_(True)
    ref_ws = [w.detach().to(wide).requires_grad_(True) for w in ws]
    ref = reference.mlp(ref_x, ref_ws, **kw)
    assert_matches(out, ref, dtype, "mlp")
    grad = make(out.shape, dtype, device, gen, -1.0, 1.0)
    grads = torch.autograd.grad(out, (x, *ws), grad)
    if all_finite(x, ref) and dtype not in HALF:
        ref_grads = torch.autograd.grad(ref, (ref_x, *ref_ws), grad.to(wide))
        for i, (a, b) in enumerate(zip(grads, ref_grads)):
            assert_matches(a, b, dtype, f"mlp gradient {i}", rtol=_grad_rtol(dtype))
    else:
        assert all(g.shape == t.shape for g, t in zip(grads, (x, *ws)))


# -- packed samples -------------------------------------------------------------


def _packed(d: Draws, gen, dtype, device):
    """A per-sample layout, as keyword arguments of the packed ops, plus the
    sample shape: packed with ray_indices (with n_rays or not), packed with
    nerfacc's packed_info, or batched (n_rays, n_samples)."""
    mode = d(st.sampled_from(["ray_indices", "ray_indices without n_rays", "packed_info", "batched"]), "layout")
    n_rays = d(st.integers(0, 8), "n_rays")
    if mode == "batched":
        return {}, (n_rays, d(st.integers(0, 6), "samples per ray")), n_rays
    counts = torch.tensor(d(st.lists(st.integers(0, 6), min_size=n_rays, max_size=n_rays), "counts"), dtype=torch.long)
    ray_indices = torch.repeat_interleave(torch.arange(n_rays), counts).to(device)
    n = int(counts.sum())
    if mode == "packed_info":
        starts = torch.cumsum(counts, 0) - counts
        info = torch.stack([starts, counts], -1).to(device)
        return {"packed_info": info.int() if d(st.booleans(), "int32") else info}, (n,), n_rays
    index_dtype = d(st.sampled_from([torch.int64, torch.int32]), "index dtype")
    kw = {"ray_indices": ray_indices.to(index_dtype)}
    if mode == "ray_indices":
        kw["n_rays"] = n_rays
    else:  # n_rays defaults to max + 1: trailing empty rays are not there
        n_rays = int(ray_indices.max()) + 1 if n else 0
    return kw, (n,), n_rays


DENSITY_SPECIALS = (NAN, INF, 1e30, 1e-40, 0.0, -0.0, 1e4)
ALPHA_SPECIALS = (NAN, 0.0, 1.0, 1e-40, 1 - 1e-7)


def _intervals(d: Draws, gen, shape, dtype, device):
    t0 = make(shape, dtype, device, gen, 0.0, 4.0, contiguous=d(st.booleans(), "t contiguous"))
    dt = make(shape, dtype, device, gen, 0.0, d(st.sampled_from([0.01, 0.5, 10.0]), "dt scale"))
    return t0, t0 + dt


def prop_render_weight_from_density(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    kw, shape, _ = _packed(d, gen, dtype, device)
    magnitude = d(st.sampled_from([1.0, 100.0]), "density magnitude")
    sigmas = make(
        shape, dtype, device, gen, 0.0, magnitude, d(specials(DENSITY_SPECIALS), "specials"), d(st.booleans(), "c")
    )
    t0, t1 = _intervals(d, gen, shape, dtype, device)
    prefix = make(shape, dtype, device, gen, 0.0, 1.0) if d(st.booleans(), "prefix_trans") else None
    sigmas.requires_grad_(True)
    outs = d.call(ops.render_weight_from_density, t0, t1, sigmas, prefix_trans=prefix, **kw)
    ref_sigmas = sigmas.detach().double().requires_grad_(True)
    wide = [None if t is None else t.double() for t in (t0, t1, prefix)]
    refs = reference.render_weight_from_density(wide[0], wide[1], ref_sigmas, prefix_trans=wide[2], **kw)
    for name, a, b in zip(("weights", "trans", "alphas"), outs, refs):
        assert_matches(a, b, dtype, f"render_weight_from_density {name}")
    grads = [make(shape, dtype, device, gen, -1.0, 1.0) for _ in range(3)]
    (g,) = torch.autograd.grad(outs, sigmas, grads)
    if all_finite(sigmas) and magnitude == 1.0 and dtype not in HALF:
        (r,) = torch.autograd.grad(refs, ref_sigmas, [x.double() for x in grads])
        assert_matches(g, r, dtype, "render_weight_from_density gradient", rtol=_grad_rtol(dtype))


def prop_render_weight_from_alpha(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    kw, shape, _ = _packed(d, gen, dtype, device)
    alphas = make(shape, dtype, device, gen, 0.0, 1.0, d(specials(ALPHA_SPECIALS), "specials"), d(st.booleans(), "c"))
    prefix = make(shape, dtype, device, gen, 0.0, 1.0) if d(st.booleans(), "prefix_trans") else None
    alphas.requires_grad_(True)
    outs = d.call(ops.render_weight_from_alpha, alphas, prefix_trans=prefix, **kw)
    ref_alphas = alphas.detach().double().requires_grad_(True)
    refs = reference.render_weight_from_alpha(
        ref_alphas, prefix_trans=None if prefix is None else prefix.double(), **kw
    )
    assert len(outs) == 2
    for name, a, b in zip(("weights", "trans"), outs, refs):
        assert_matches(a, b, dtype, f"render_weight_from_alpha {name}")
    grads = [make(shape, dtype, device, gen, -1.0, 1.0) for _ in range(2)]
    (g,) = torch.autograd.grad(outs, alphas, grads)
    if all_finite(alphas) and dtype not in HALF:
        (r,) = torch.autograd.grad(refs, ref_alphas, [x.double() for x in grads])
        assert_matches(g, r, dtype, "render_weight_from_alpha gradient", rtol=_grad_rtol(dtype))


def prop_composite(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    kw, shape, n_rays = _packed(d, gen, dtype, device)
    kind = d(st.sampled_from(["density", "alpha", "weight"]), "kind")
    pool = {"density": DENSITY_SPECIALS, "alpha": ALPHA_SPECIALS, "weight": (NAN, INF, -INF, 1e30, 0.0)}[kind]
    inputs = make(shape, dtype, device, gen, 0.0, 1.0, d(specials(pool), "specials"), d(st.booleans(), "c"))
    channels = d(st.one_of(st.none(), st.integers(0, 5)), "channels")
    values = None
    if channels is not None:
        values = make((*shape, channels), dtype, device, gen, -2.0, 2.0, contiguous=d(st.booleans(), "values c"))
        values.requires_grad_(True)
    with_t = kind == "density" or d(st.booleans(), "with t")
    t0, t1 = _intervals(d, gen, shape, dtype, device) if with_t else (None, None)
    eps = d(st.sampled_from([0.0, 0.0, 1e-3, 0.3]), "early_stop_eps")
    bkgd = None
    if d(st.booleans(), "render_bkgd"):
        c = 0 if channels is None else channels
        bkgd = make(d(st.sampled_from([(c,), (n_rays, c)]), "bkgd shape"), dtype, device, gen)
    inputs.requires_grad_(True)
    args = dict(kw, t_starts=t0, t_ends=t1, kind=kind, early_stop_eps=eps, render_bkgd=bkgd)
    outs = d.call(ops.composite, inputs, values, **args)
    ref_inputs = inputs.detach().double().requires_grad_(True)
    ref_values = None if values is None else values.detach().double().requires_grad_(True)
    wide = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in args.items()}
    refs = reference.composite(ref_inputs, ref_values, **wide)
    for name, a, b in zip(("values", "opacity", "depth"), outs, refs):
        assert_matches(a, b, dtype, f"composite {name}")
    wrt = [inputs] + ([values] if values is not None else [])
    grads = [make(o.shape, dtype, device, gen, -1.0, 1.0) for o in outs]
    live = [i for i, o in enumerate(outs) if o.requires_grad]  # depth without t_starts is a constant
    g = torch.autograd.grad([outs[i] for i in live], wrt, [grads[i] for i in live], allow_unused=True)
    if all_finite(inputs) and eps == 0.0 and dtype not in HALF:
        live = [i for i in live if refs[i].requires_grad]
        ref_wrt = [ref_inputs, ref_values][: len(wrt)]
        r = torch.autograd.grad([refs[i] for i in live], ref_wrt, [grads[i].double() for i in live], allow_unused=True)
        r = [torch.zeros_like(w) if x is None else x for x, w in zip(r, ref_wrt)]
        for i, (a, b) in enumerate(zip(g, r)):
            assert_matches(a, b, dtype, f"composite gradient {i}", rtol=_grad_rtol(dtype))


def prop_accumulate_along_rays(d: Draws):
    gen, dtype, device = _gen(d), _dtype(d), _device(d)
    kw, shape, n_rays = _packed(d, gen, dtype, device)
    kw.pop("packed_info", None)
    if "ray_indices" not in kw and len(shape) == 1:
        kw = {"ray_indices": torch.zeros(shape, dtype=torch.long, device=device), "n_rays": 1}
    if "ray_indices" in kw and d(st.booleans(), "unsorted"):  # nerfacc accepts them; summed with index_add_
        kw["ray_indices"] = kw["ray_indices"].flip(0)
    weights = make(shape, dtype, device, gen, 0.0, 1.0, d(specials(), "specials"), d(st.booleans(), "c"))
    channels = d(st.one_of(st.none(), st.integers(0, 5)), "channels")
    values = None if channels is None else make((*shape, channels), dtype, device, gen, -2.0, 2.0)
    out = d.call(ops.accumulate_along_rays, weights, values, **kw)
    ref = reference.accumulate_along_rays(weights.double(), None if values is None else values.double(), **kw)
    assert_matches(out, ref, dtype, "accumulate_along_rays")


# -- marching -------------------------------------------------------------------


def prop_occgrid_march(d: Draws):
    gen, device = _gen(d), _device(d)
    dtype = _dtype(d)
    n_grids, levels = d(st.integers(1, 3), "n_grids"), d(st.integers(1, 3), "levels")
    res = d(st.tuples(*[st.integers(1, 12)] * 3), "resolution")
    fill = d(st.sampled_from([0.0, 0.1, 0.5, 1.0]), "occupied fraction")
    binaries = torch.rand(n_grids, levels, *res, generator=gen) < fill
    aabb = [-1.0, -0.5, -1.0, 1.0, 1.0, 0.5]
    n = d(st.integers(0, 24), "rays")
    o = make((n, 3), dtype, device, gen, -3.0, 3.0, d(specials(max_size=2), "origin specials"), d(st.booleans(), "c"))
    toward = make((n, 3), torch.float64, device, gen, -0.5, 0.5) - o.double()
    dirs = (toward / toward.norm(dim=-1, keepdim=True).clamp_min(1e-9)).to(dtype)
    for index, value in d(specials(max_size=2), "direction specials"):
        if n:
            dirs[index % n, index % 3] = value
    near = make((n,), dtype, device, gen, 0.0, 1.0, d(specials((NAN, INF, -INF, -1e30), 1), "near specials"))
    far = make((n,), dtype, device, gen, 1.0, 8.0, d(specials((NAN, INF, 1e30, 0.0), 1), "far specials"))
    step = d(st.sampled_from([0.03, 0.1, 0.5]), "step")
    cone = d(st.sampled_from([0.0, 1 / 256, 0.1]), "cone_angle")
    grid_indices = (
        torch.randint(0, n_grids, (n,), generator=gen).to(device) if n_grids > 1 or d(st.booleans(), "gi") else None
    )
    if grid_indices is not None and d(st.booleans(), "int32 grid_indices"):
        grid_indices = grid_indices.int()
    bits = ops.pack_bits(binaries).to(device)
    block_bits = block_bits_of(binaries).to(device) if d(st.booleans(), "block_bits") else None
    ray_indices, t0, t1, offsets = d.call(
        ops.occgrid_march,
        bits,
        res,
        aabb,
        o,
        dirs,
        near,
        far,
        step,
        cone,
        grid_indices=grid_indices,
        block_bits=block_bits,
    )
    assert ray_indices.dtype == offsets.dtype == torch.int64 and t0.dtype == t1.dtype == dtype
    assert offsets.shape == (n + 1,) and int(offsets[0]) == 0 and int(offsets[-1]) == ray_indices.numel()
    counts = offsets[1:] - offsets[:-1]
    assert torch.equal(ray_indices, torch.repeat_interleave(torch.arange(n, device=device), counts))
    # In bfloat16 (8 significant bits) a step below the spacing of t rounds to an empty interval.
    longer = (t1 >= t0) if dtype == torch.bfloat16 else (t1 > t0)
    assert all_finite(t0, t1) and bool(longer.all()), "samples must be finite, non-empty intervals"
    # Documented: a NaN / inf origin, direction or t_near gives no samples; a NaN / inf t_far is no bound.
    broken = ~(torch.isfinite(o).all(-1) & torch.isfinite(dirs).all(-1) & torch.isfinite(near))
    assert int(counts[broken].sum()) == 0, "a ray with a NaN or infinite origin, direction or t_near has samples"
    # Huge finite values (1e30, 3e9) would make the dense reference walk 1e31 steps: only the above for them.
    tame = ~broken & (o.abs() < 1e3).all(-1) & (dirs.abs() < 1e3).all(-1) & (near.abs() < 1e3)
    keep = tame.nonzero().flatten()
    wide = torch.float32 if dtype in HALF else dtype
    o, dirs, near, far = (t[keep].to(wide) for t in (o, dirs, near, far))
    far = torch.where(torch.isfinite(far), far, torch.full_like(far, 1e30))
    gi = None if grid_indices is None else grid_indices[keep]
    ref = reference.occgrid_march(binaries.to(device), aabb, o, dirs, near, far, step, cone, gi)
    mine = torch.isin(ray_indices, keep)
    assert torch.equal(ray_indices[mine], keep[ref[0]]), "samples per ray differ from the reference"
    torch.testing.assert_close(t0[mine], ref[1].to(dtype), rtol=RTOL[dtype], atol=1e-5)
    torch.testing.assert_close(t1[mine], ref[2].to(dtype), rtol=RTOL[dtype], atol=1e-5)


def prop_pack_bits(d: Draws):
    gen = _gen(d)
    shape = d(st.tuples(st.integers(1, 3), st.integers(1, 3), *[st.integers(0, 9)] * 3), "shape")
    binaries = torch.rand(shape, generator=gen) < d(st.floats(0.0, 1.0), "fraction")
    bits = d.call(ops.pack_bits, binaries)
    cells = shape[2] * shape[3] * shape[4]
    assert bits.dtype == torch.uint8 and bits.shape == (*shape[:2], -(-cells // 8))
    assert torch.equal(ops.unpack_bits(bits, shape[2:]), binaries)


# -- raw ops with caller-given offsets and indices ------------------------------


def _offsets(d: Draws, n: int):
    """Offsets that are valid (n_rays + 1 non-decreasing from 0 to n) or broken in one of the ways a caller might."""
    rays = d(st.integers(0, 6), "rays")
    cuts = sorted(d(st.lists(st.integers(0, n), min_size=rays, max_size=rays), "cuts"))
    offsets = [0, *cuts, n]
    how = d(st.sampled_from(["valid", "valid", "shuffled", "one off", "negative", "huge", "short", "empty"]), "how")
    if how == "shuffled" and len(offsets) > 2:
        offsets = [offsets[0], *reversed(offsets[1:])]
    elif how == "one off":
        i = d(st.integers(0, len(offsets) - 1), "index")
        offsets[i] += d(st.sampled_from([-1, 1]), "by")
    elif how == "negative":
        offsets[d(st.integers(0, len(offsets) - 1), "index")] = -(2**40)
    elif how == "huge":
        offsets[d(st.integers(0, len(offsets) - 1), "index")] = 2**62
    elif how == "short":
        offsets = offsets[:-1]
    elif how == "empty":
        offsets = []
    return torch.tensor(offsets, dtype=torch.long)


def _valid_offsets(offsets: torch.Tensor, n: int) -> bool:
    return (
        offsets.numel() >= 1
        and int(offsets[0]) == 0
        and int(offsets[-1]) == n
        and bool((offsets[1:] >= offsets[:-1]).all())
    )


def prop_raw_packed_ops(d: Draws):
    gen = _gen(d)
    dtype = _dtype(d, (torch.float32, torch.float64))
    n = d(st.integers(0, 20), "samples")
    offsets = _offsets(d, n)
    sigmas = make((n,), dtype, "cpu", gen)
    t0 = make((n,), dtype, "cpu", gen)
    t1 = t0 + 0.1
    values = make((n, 3), dtype, "cpu", gen)
    m = _ext.load()
    which = d(st.sampled_from(["render_weight_forward", "composite_forward"]), "op")
    try:
        if which == "render_weight_forward":
            out = d.call(m.render_weight_forward, offsets, sigmas, t0, t1, 0)
        else:
            out = d.call(m.composite_forward, offsets, sigmas, values, t0, t1, 0, 0.0)
    except Refused as error:
        assert not _valid_offsets(offsets, n), f"valid offsets {offsets.tolist()} refused: {error}"
        assert "offsets" in str(error).splitlines()[0], f"the error does not name offsets: {error}"
        return
    assert _valid_offsets(offsets, n), f"{which} accepted offsets {offsets.tolist()} for {n} samples"
    info = torch.stack([offsets[:-1], offsets[1:] - offsets[:-1]], -1)
    if which == "render_weight_forward":
        ref = reference.render_weight_from_density(t0.double(), t1.double(), sigmas.double(), packed_info=info)
    else:
        wide = (sigmas.double(), values.double(), None, None, t0.double(), t1.double())
        ref = reference.composite(*wide, packed_info=info)
        ref = (ref[0], ref[1][:, 0], ref[2][:, 0])
    for i, (a, b) in enumerate(zip(out, ref)):
        assert_matches(a, b, dtype, f"{which} output {i}")


def prop_raw_ray_offsets(d: Draws):
    n_rays = d(st.integers(0, 8), "n_rays")
    indices = torch.tensor(d(st.lists(st.integers(-3, 10), max_size=20), "ray_indices"), dtype=torch.long)
    if d(st.booleans(), "sorted"):
        indices = indices.sort().values
    if d(st.booleans(), "int32"):
        indices = indices.int()
    offsets, error = d.call(_ext.load().ray_offsets, indices, n_rays)
    out_of_range = bool(((indices < 0) | (indices >= n_rays)).any())
    unsorted = bool((indices[1:] < indices[:-1]).any())
    assert bool(error & 2) == out_of_range, f"range bit {error} for {indices.tolist()} with {n_rays} rays"
    if not out_of_range:
        assert bool(error & 1) == unsorted, f"order bit {error} for {indices.tolist()}"
        if not unsorted:
            expected = torch.searchsorted(indices.long(), torch.arange(n_rays + 1))
            assert torch.equal(offsets, expected), f"offsets {offsets.tolist()} for {indices.tolist()}"


def prop_raw_occgrid_march(d: Draws):
    gen = _gen(d)
    n_grids = d(st.integers(1, 3), "n_grids")
    bits = torch.randint(0, 256, (n_grids, 1, 8), generator=gen, dtype=torch.uint8)
    n = d(st.integers(0, 10), "rays")
    gi = torch.tensor(d(st.lists(st.integers(-2, 4), min_size=n, max_size=n), "grid_indices"), dtype=torch.long)
    o = torch.tensor([[0.0, 0.0, -3.0]]).repeat(n, 1)
    dirs = torch.tensor([[0.0, 0.0, 1.0]]).repeat(n, 1)
    near, far = torch.zeros(n), torch.full((n,), 6.0)
    march = _ext.load().occgrid_march
    try:
        out = d.call(march, bits, None, [4, 4, 4], [0.0] * 3, [1.0] * 3, o, dirs, gi, near, far, 0.1, 0.0)
    except Refused as error:
        assert bool(((gi < 0) | (gi >= n_grids)).any()), f"valid grid_indices refused: {error}"
        assert "grid_indices" in str(error).splitlines()[0], f"the error does not name grid_indices: {error}"
        return
    assert not bool(((gi < 0) | (gi >= n_grids)).any()), f"grid_indices {gi.tolist()} accepted for {n_grids} grids"
    alone = ops.occgrid_march(bits, (4, 4, 4), [-1.0] * 3 + [1.0] * 3, o, dirs, near, far, 0.1, grid_indices=gi)
    for a, b in zip(out, alone):
        assert torch.equal(a, b)


PROPERTIES = {
    "triplane_sample": prop_triplane_sample,
    "hashgrid_encode": prop_hashgrid_encode,
    "mlp": prop_mlp,
    "render_weight_from_density": prop_render_weight_from_density,
    "render_weight_from_alpha": prop_render_weight_from_alpha,
    "composite": prop_composite,
    "accumulate_along_rays": prop_accumulate_along_rays,
    "occgrid_march": prop_occgrid_march,
    "pack_bits": prop_pack_bits,
    "raw_packed_ops": prop_raw_packed_ops,
    "raw_ray_offsets": prop_raw_ray_offsets,
    "raw_occgrid_march": prop_raw_occgrid_march,
}


def run(name: str, examples: int) -> dict:
    """Run one property for ``examples`` examples with a fixed seed; the outcome as a dict."""
    prop = PROPERTIES[name]
    count = {"examples": 0, "refused": 0}
    refusals: list = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data):
        count["examples"] += 1
        try:
            prop(Draws(data, name))
        except Refused as refusal:
            count["refused"] += 1
            refusals.append(str(refusal).splitlines()[0])

    try:
        check()
    except BaseException as error:  # the property failed; hypothesis printed the example
        found = getattr(error, "exceptions", None) or [error]  # hypothesis groups distinct failures
        text = "\n".join("".join(traceback.format_exception_only(type(e), e)) for e in found)
        return {"op": name, **count, "ok": False, "error": text}
    return {"op": name, **count, "ok": True, "refusals": sorted(set(refusals))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op", nargs="?", choices=sorted(PROPERTIES))
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES)
    parser.add_argument("--list", action="store_true", help="print the property names")
    args = parser.parse_args(argv)
    if args.list or args.op is None:
        print("\n".join(PROPERTIES))
        return 0
    torch.set_num_threads(1)
    outcome = run(args.op, args.examples)
    print(json.dumps(outcome), flush=True)
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
