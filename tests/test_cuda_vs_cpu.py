"""Every CUDA kernel of the extension against the CPU kernel it shares its body with:
the same inputs on both devices, forward and every gradient; plus the model (one
forward and backward under the trainer's bfloat16 autocast) and a few training steps on
CUDA, single process and under torchrun (NCCL).

Skipped where no CUDA device is present (CI has none); these run where a GPU is lent.
Float64 cases compare tightly (only the summation order of the CUDA atomics differs);
float32 cases ask the CUDA result to be as close to a float64 answer as the CPU's is,
because a fixed float32 tolerance between two summation orders is loose or flaky.
"""

import itertools
import math
import os
from pathlib import Path

import pytest
import torch

from aids.op_comparison import AABB, LEVEL_SETS, composite_case, outputs_and_grads, render_weight_cases
from aids.op_comparison import packed_samples as _packed
from aids.op_comparison import planes as _planes
from aids.op_comparison import points as _points
from aids.op_comparison import rays as _rays
from aids.op_comparison import shell_density as _shell
from aids.op_comparison import shell_grid as _grid
from aids.op_comparison import table as _table
from aids.op_comparison import unit_points as _unit_points
from s3d_fast import ops
from s3d_fast.nn import OccupancyGrid

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEV = "cuda"

# The ops with a CUDA kernel, and the tests below that run each of them.
COVERED = {
    "s3d_fast::triplane_forward": "test_triplane_every_mode",
    "s3d_fast::triplane_backward": "test_triplane_every_mode",
    "s3d_fast::hashgrid_forward": "test_hashgrid_every_compiled_shape",
    "s3d_fast::hashgrid_backward": "test_hashgrid_every_compiled_shape",
    "s3d_fast::render_weight_forward": "test_render_weight",
    "s3d_fast::render_weight_backward": "test_render_weight",
    "s3d_fast::composite_forward": "test_composite",
    "s3d_fast::composite_backward": "test_composite",
    "s3d_fast::ray_offsets": "test_ray_offsets_and_their_errors",
    "s3d_fast::occgrid_march": "test_occgrid_march_float64_is_identical",
    "s3d_fast::mlp_forward": "test_mlp_networks",
    "s3d_fast::mlp_backward": "test_mlp_networks",
}


def test_every_op_with_a_cuda_kernel_is_covered_here():
    from s3d_fast import _ext

    info = _ext.info()
    assert "cuda" in info["backends"], f"the extension was built without CUDA: {info}"
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith("s3d_fast::"))
    with_cuda = {n for n in names if has(n, "CUDA")}
    assert with_cuda == set(COVERED), f"CUDA kernels without a test here, or gone: {with_cuda ^ set(COVERED)}"
    for test in COVERED.values():
        assert callable(globals()[test])


# -- helpers ------------------------------------------------------------------------------------------


def assert_same(fn, inputs, rtol=1e-10, atol=1e-10, grad_rtol=1e-9, grad_atol=1e-9):
    """CUDA and CPU agree on fn's outputs and gradients (float64 inputs)."""
    cpu = outputs_and_grads(fn, inputs, "cpu")
    gpu = outputs_and_grads(fn, inputs, DEV)
    assert len(cpu[0]) == len(gpu[0]) and len(cpu[1]) == len(gpu[1])
    for i, (a, b) in enumerate(zip(gpu[0], cpu[0])):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, i=i: f"output {i}: {m}")
    for i, (a, b) in enumerate(zip(gpu[1], cpu[1])):
        assert (a is None) == (b is None), i
        if a is not None:
            torch.testing.assert_close(a, b, rtol=grad_rtol, atol=grad_atol, msg=lambda m, i=i: f"gradient {i}: {m}")
    return cpu, gpu


def assert_as_accurate_float32(fn, inputs64, floor=1e-5):
    """fn on float32 inputs: the CUDA results are no further from the float64 CPU answer
    than the float32 CPU results are (twice that, or ``floor`` relative to the scale)."""
    gold = outputs_and_grads(fn, inputs64, "cpu")
    inputs32 = _cast(inputs64, torch.float32)
    cpu = outputs_and_grads(fn, inputs32, "cpu")
    gpu = outputs_and_grads(fn, inputs32, DEV)
    for kind, g_list, c_list, d_list in (("output", gold[0], cpu[0], gpu[0]), ("gradient", gold[1], cpu[1], gpu[1])):
        for i, (g, c, d) in enumerate(zip(g_list, c_list, d_list)):
            if g is None or not g.is_floating_point():
                assert (d is None and g is None) or torch.equal(d, c), (kind, i)
                continue
            err_gpu = (d.double() - g).abs().max().item() if g.numel() else 0.0
            err_cpu = (c.double() - g).abs().max().item() if g.numel() else 0.0
            scale = max(1.0, g.abs().max().item() if g.numel() else 0.0)
            assert err_gpu <= max(2.0 * err_cpu, floor * scale), (kind, i, err_gpu, err_cpu, scale)


def _cast(x, dtype):
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype).requires_grad_(x.requires_grad) if x.is_floating_point() else x
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    return x


# -- tri-plane sampling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plane_reduce,scale_reduce", list(itertools.product(("sum", "mean", "product", "concat"), ("concat", "sum")))
)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("axes", ["xy_xz_yz", "eg3d"])
def test_triplane_every_mode(plane_reduce, scale_reduce, align_corners, padding, axes):
    kw = dict(
        plane_reduce=plane_reduce, scale_reduce=scale_reduce, align_corners=align_corners, padding=padding, axes=axes
    )
    assert_same(lambda pts, planes: ops.triplane_sample(planes, pts, **kw), (_points(), _planes()))


@pytest.mark.parametrize("which", ["points", "planes"])
def test_triplane_one_gradient_at_a_time(which):
    # The launcher skips the point kernel or the plane kernels when their gradient is not needed.
    pts, planes = _points(grad=which == "points"), _planes(grad=which == "planes")
    assert_same(lambda p, pl: ops.triplane_sample(pl, p, plane_reduce="product", scale_reduce="sum"), (pts, planes))


@pytest.mark.parametrize("plane_reduce", ["sum", "product"])
def test_triplane_float32_many_points_per_texel(plane_reduce):
    # 2^16 points on 8^2..32^2 planes: hundreds of atomic adds land on every texel.
    planes = _planes(shapes=((8, 8), (16, 16), (32, 32)), batch=1, channels=32, seed=2)
    pts = _points(batch=1, n=1 << 16, seed=3, spread=1.05)
    assert_as_accurate_float32(
        lambda p, pl: ops.triplane_sample(pl, p, plane_reduce=plane_reduce, scale_reduce="concat"), (pts, planes)
    )


def test_triplane_eg3d_layout_empty_and_gradcheck():
    # EG3D keeps (B, 3, C, H, W): a permuted, non-contiguous view.
    g = torch.Generator().manual_seed(4)
    eg3d = torch.randn(2, 3, 5, 12, 10, generator=g, dtype=torch.float64).requires_grad_()
    assert_same(
        lambda p, e: ops.triplane_sample(e.permute(0, 1, 3, 4, 2), p, axes="eg3d", plane_reduce="mean"),
        (_points(), eg3d),
    )
    empty = ops.triplane_sample(
        [p.detach().to(DEV) for p in _planes()], torch.zeros(2, 0, 3, dtype=torch.float64, device=DEV)
    )
    assert empty.shape == (2, 0, 33) and empty.device.type == DEV
    # Linear in the planes (also under product, per plane): finite differences are exact there.
    planes = [p.detach().to(DEV).requires_grad_() for p in _planes(shapes=((4, 5),), batch=1, channels=3)]
    pts = _points(batch=1, n=16, grad=False).to(DEV)
    assert torch.autograd.gradcheck(lambda pl: ops.triplane_sample([pl], pts, plane_reduce="sum"), (planes[0],))


# -- hash-grid encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,features", list(itertools.product((1, 2, 3), (1, 2, 4, 8))))
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("levels", list(LEVEL_SETS))
def test_hashgrid_every_compiled_shape(levels, dims, features, interpolation):
    # Every (D, F) the launchers instantiate, dense, hashed and mixed levels.
    kw = dict(LEVEL_SETS[levels], n_features_per_level=features, interpolation=interpolation)
    x, params = _unit_points(700, dims), _table(dims, kw)
    assert_same(lambda a, b: ops.hashgrid_encode(a, b, **kw), (x, params))


@pytest.mark.parametrize("which", ["x", "params"])
def test_hashgrid_one_gradient_at_a_time_and_outside_the_box(which):
    kw = dict(LEVEL_SETS["mixed"], interpolation="smoothstep")
    x = _unit_points(2000, 3, lo=-1.0, hi=2.0)  # tcnn wraps outside [0, 1]; so must both devices
    params = _table(3, kw)
    x.requires_grad_(which == "x")
    params.requires_grad_(which == "params")
    assert_same(lambda a, b: ops.hashgrid_encode(a, b, **kw), (x, params))


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_hashgrid_float32_benchmark_shape(interpolation):
    # The README's configuration (16 levels, 2^19, scale 1.5) at 2^17 points: coarse dense
    # entries take thousands of atomic adds each.
    kw = dict(
        n_levels=16,
        n_features_per_level=2,
        log2_hashmap_size=19,
        base_resolution=16,
        per_level_scale=1.5,
        interpolation=interpolation,
    )
    assert_as_accurate_float32(
        lambda a, b: ops.hashgrid_encode(a, b, **kw), (_unit_points(1 << 17, 3, seed=5), _table(3, kw, seed=6))
    )


def test_hashgrid_module_leading_dims_empty_and_gradcheck():
    from s3d_fast.nn import HashGrid

    grid = HashGrid(
        3, n_levels=3, n_features_per_level=2, log2_hashmap_size=5, base_resolution=3, per_level_scale=2.0
    ).double()
    x = _unit_points(48, 3, seed=7).detach().view(4, 12, 3)
    cpu = grid(x)
    gpu = grid.to(DEV)(x.to(DEV))
    assert gpu.device.type == DEV and gpu.shape == (4, 12, 6)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12)
    assert grid(torch.zeros(0, 3, dtype=torch.float64, device=DEV)).shape == (0, 6)
    kw = dict(n_levels=3, n_features_per_level=2, base_resolution=3, per_level_scale=2.0, log2_hashmap_size=5)
    params = _table(3, kw).detach().to(DEV).requires_grad_()
    xs = _unit_points(12, 3, seed=8).detach().to(DEV).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ops.hashgrid_encode(a, b, **kw), (xs, params), eps=1e-7, atol=1e-6)


# -- volume rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("layout", ["packed", "batched", "prefix"])
def test_render_weight(index_dtype, layout):
    for fn, inputs in render_weight_cases(index_dtype, layout):
        assert_same(fn, inputs)


@pytest.mark.parametrize("kind", ["density", "alpha", "weight"])
@pytest.mark.parametrize("early_stop_eps", [0.0, 1e-3, 0.3])
@pytest.mark.parametrize("channels", [None, 3, 5, 16, 32, 64])  # compile-time widths 3/16/32/64, run-time 5
def test_composite(kind, early_stop_eps, channels):
    assert_same(*composite_case(kind, early_stop_eps, channels))


def test_composite_batched_accumulate_and_float32_extremes():
    g = torch.Generator().manual_seed(4)
    sig = (torch.rand(128, 24, generator=g, dtype=torch.float64) * 50).requires_grad_()
    t = torch.sort(torch.rand(128, 25, generator=g, dtype=torch.float64) * 3, dim=1).values
    val = torch.rand(128, 24, 7, generator=g, dtype=torch.float64).requires_grad_()
    assert_same(
        lambda s, v, a, b: ops.composite(s, v, t_starts=a, t_ends=b, early_stop_eps=1e-4),
        (sig, val, t[:, :-1].contiguous(), t[:, 1:].contiguous()),
    )
    ri, _, _, n = _packed(seed=5)
    w = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_()
    v = torch.rand(n, 3, generator=g, dtype=torch.float64).requires_grad_()
    assert_same(lambda a, b, r: ops.accumulate_along_rays(a, b, r, 300), (w, v, ri))
    assert_same(lambda a, r: ops.accumulate_along_rays(a, None, r, 300), (w, ri))
    # Densities from 1e-3 to 1e4 (opaque after one sample, or never): float32 as accurate as the CPU's.
    ri, t0, t1, n = _packed(n_rays=4096, max_per_ray=64, seed=6)
    sig = (10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 7 - 3)).requires_grad_()
    val = torch.rand(n, 32, generator=g, dtype=torch.float64).requires_grad_()
    assert_as_accurate_float32(
        lambda s, v, r, a, b: ops.composite(s, v, r, 4096, a, b, early_stop_eps=1e-4), (sig, val, ri, t0, t1)
    )
    assert_as_accurate_float32(
        lambda a, b, s, r: ops.render_weight_from_density(a, b, s, ray_indices=r, n_rays=4096), (t0, t1, sig, ri)
    )


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_ray_offsets_and_their_errors(index_dtype):
    from s3d_fast import _ext

    lib = _ext.load()
    ri, _, _, n = _packed(index_dtype=index_dtype)
    for n_rays in (300, 310):  # trailing rays with no samples
        cpu_off, cpu_err = lib.ray_offsets(ri, n_rays)
        gpu_off, gpu_err = lib.ray_offsets(ri.to(DEV), n_rays)
        assert gpu_off.device.type == DEV and torch.equal(gpu_off.cpu(), cpu_off) and gpu_err == cpu_err == 0
    empty_off, err = lib.ray_offsets(torch.zeros(0, dtype=index_dtype, device=DEV), 7)
    assert err == 0 and torch.equal(empty_off.cpu(), torch.zeros(8, dtype=torch.long))
    x = torch.rand(n, dtype=torch.float64, device=DEV)
    unsorted = ri.flip(0).to(DEV)
    with pytest.raises(ValueError, match="sorted"):
        ops.render_weight_from_alpha(x, ray_indices=unsorted, n_rays=300)
    with pytest.raises(ValueError, match="must lie in"):
        ops.render_weight_from_alpha(x, ray_indices=ri.to(DEV), n_rays=100)
    assert lib.ray_offsets(unsorted, 300)[1] == lib.ray_offsets(ri.flip(0), 300)[1] != 0


# -- occupancy grid -----------------------------------------------------------------------------------


def _march(grid, o, d, near, far, step, cone, gi, blocks, dev):
    return ops.occgrid_march(
        grid.bits.to(dev),
        grid.resolution,
        AABB,
        o.to(dev),
        d.to(dev),
        near.to(dev),
        far.to(dev),
        step,
        cone,
        None if gi is None else gi.to(dev),
        block_bits=grid.block_bits.to(dev) if blocks else None,
    )


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("cone_angle", [0.0, 1 / 256, 0.02])
@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("n_grids", [1, 3])
def test_occgrid_march_float64_is_identical(levels, cone_angle, blocks, n_grids):
    grid = _grid(levels=levels, n_grids=n_grids)
    o, d = _rays()
    gi = None if n_grids == 1 else torch.arange(len(o)) % n_grids
    g = torch.Generator().manual_seed(9)
    near = torch.rand(len(o), generator=g, dtype=torch.float64)
    far = near + 1 + torch.rand(len(o), generator=g, dtype=torch.float64) * 4
    cpu = _march(grid, o, d, near, far, 0.01, cone_angle, gi, blocks, "cpu")
    gpu = _march(grid, o, d, near, far, 0.01, cone_angle, gi, blocks, DEV)
    assert cpu[0].numel() > 10000 and all(t.device.type == DEV for t in gpu)
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[3].cpu(), cpu[3])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gpu[2].cpu(), cpu[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cone_angle", [0.0, 0.02])
def test_occgrid_march_float32_as_accurate_as_cpu(cone_angle):
    # Float32 midpoints within an ulp of a cell face may fall either way (FMA contraction
    # differs between the compilers): count the samples the float64 march does not have.
    grid = _grid(levels=2)
    o, d = _rays(n=20000, seed=1)
    near, far = torch.zeros(len(o), dtype=torch.float64), torch.full((len(o),), 1e10, dtype=torch.float64)
    gold = _march(grid, o, d, near, far, 0.005, cone_angle, None, True, "cpu")

    def unmatched(a, b):  # samples of a with no sample of b on the same ray within 1e-4
        if b.numel() == 0:
            return a.numel()
        i = torch.searchsorted(b, a).clamp(1, b.numel() - 1)
        return int((torch.minimum((a - b[i]).abs(), (a - b[i - 1]).abs()) > 1e-4).sum())

    gold_key = gold[0].double() * 100 + gold[1]  # t < 100 inside the grid's box: one sorted key

    def misses(res):
        key = res[0].cpu().double() * 100 + res[1].cpu().double()
        return unmatched(key, gold_key) + unmatched(gold_key, key)

    f = lambda dev: _march(grid, o.float(), d.float(), near.float(), far.float(), 0.005, cone_angle, None, True, dev)  # noqa: E731
    cpu, gpu = f("cpu"), f(DEV)
    assert gpu[0].numel() > 100000
    assert misses(gpu) <= max(2 * misses(cpu), gpu[0].numel() // 10000), (misses(gpu), misses(cpu))


def test_occupancy_grid_update_from_density_and_sampling_on_cuda():
    res = 16
    cpu_grid = OccupancyGrid(AABB, res, levels=2, n_grids=2).train()
    gpu_grid = OccupancyGrid(AABB, res, levels=2, n_grids=2).to(DEV).train()

    def occ(x, g):  # constant inside each cell of either level (level-0 cells nest in level-1 ones),
        c = torch.floor((x + 2) / 4 * res).long()  # so the jitter does not matter
        return ((c.sum(-1) % 3) == 0).to(x.dtype) * 0.5 + 0.1 * g.to(x.dtype)

    for grid in (cpu_grid, gpu_grid):  # warm-up: every cell evaluated, deterministic
        grid.update_every_n_steps(0, occ, occ_thre=0.2, warmup_steps=10, n=16)
    assert gpu_grid.bits.device.type == DEV
    torch.testing.assert_close(gpu_grid.occs.cpu(), cpu_grid.occs)
    assert torch.equal(gpu_grid.bits.cpu(), cpu_grid.bits) and torch.equal(
        gpu_grid.block_bits.cpu(), cpu_grid.block_bits
    )
    # After warm-up a random quarter plus the occupied cells: the EMA rule holds on the GPU.
    before = gpu_grid.occs.clone()
    gpu_grid.update_every_n_steps(
        32,
        lambda x, g: torch.full((x.shape[0],), 0.3, device=x.device),
        occ_thre=0.2,
        ema_decay=0.9,
        warmup_steps=10,
        n=16,
    )
    updated = torch.maximum(before * 0.9, torch.full_like(before, 0.3))
    touched = gpu_grid.occs != before
    assert bool((gpu_grid.occs == torch.where(touched, updated, before)).all()) and int(touched.sum()) > 0
    thre = torch.clamp(gpu_grid.occs.mean(1, keepdim=True), max=0.2)
    assert torch.equal(gpu_grid.binaries.reshape(2, -1), gpu_grid.occs > thre)

    # from_density and sampling with sigma_fn (early stop, alpha threshold), float64.
    cpu_grid = OccupancyGrid(AABB, 32, levels=2, n_grids=2).double().from_density(_shell, threshold=1e-2, dilate=1)
    gpu_grid = (
        OccupancyGrid(AABB, 32, levels=2, n_grids=2).double().to(DEV).from_density(_shell, threshold=1e-2, dilate=1)
    )
    assert torch.equal(gpu_grid.bits.cpu(), cpu_grid.bits)
    o, d = _rays(n=1500, seed=2)
    gi = torch.arange(1500) % 2
    out = {}
    for dev, grid in (("cpu", cpu_grid), (DEV, gpu_grid)):
        oo, dd, gg = o.to(dev), d.to(dev), gi.to(dev)

        def sigma_fn(t0, t1, ri, oo=oo, dd=dd, gg=gg):
            x = oo[ri] + dd[ri] * ((t0 + t1) / 2)[:, None]
            return _shell(x, gg[ri])

        out[dev] = grid.sampling(
            oo,
            dd,
            sigma_fn=sigma_fn,
            render_step_size=0.01,
            early_stop_eps=1e-3,
            alpha_thre=1e-2,
            grid_indices=gg,
            cone_angle=0.004,
        )
    assert out["cpu"][0].numel() > 10000 and out[DEV][0].device.type == DEV
    assert torch.equal(out[DEV][0].cpu(), out["cpu"][0])
    torch.testing.assert_close(out[DEV][1].cpu(), out["cpu"][1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[DEV][2].cpu(), out["cpu"][2], rtol=1e-12, atol=1e-12)


# -- the model and training -----------------------------------------------------------------------------


def _model_inputs(cfg, B, T, seed=0):
    from s3d_fast.data.synthtalk import camera

    g = torch.Generator().manual_seed(seed)
    R = cfg.input_resolution
    img = torch.rand(B, 3, R, R, generator=g)
    mask = torch.zeros(B, R, R, dtype=torch.long)
    mask[:, R // 4 : 3 * R // 4, R // 4 : 3 * R // 4] = 1
    c2w = torch.from_numpy(camera.front_camera()).float().expand(B, T, 4, 4).contiguous()
    K = torch.from_numpy(camera.intrinsics(R)).float().expand(B, 3, 3).contiguous()
    mel = torch.randn(B, T, 80, 16, generator=g)
    return img, mask, c2w, K, mel


def test_tiny_model_cuda_matches_cpu_in_float32():
    from model_helpers import tiny_config

    from s3d_fast.model import S3DNeRF

    cfg = tiny_config().model
    torch.manual_seed(0)
    model = S3DNeRF(cfg).eval()
    inputs = _model_inputs(cfg, B=1, T=2)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        out = {}
        for dev in ("cpu", DEV):
            m = model.to(dev)
            img, mask, c2w, K, mel = (x.to(dev) for x in inputs)
            with torch.no_grad():
                out[dev] = m(img, mask, m.audio_tokens(mel), c2w, K, stratified=False)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    for key in ("rgb", "rgb_low", "opacity"):
        torch.testing.assert_close(out[DEV][key].cpu(), out["cpu"][key], rtol=1e-3, atol=1e-3, msg=key)


def test_small_model_forward_and_backward_under_bf16_autocast():
    # What the trainer does on CUDA: bfloat16 autocast around the forward and the losses.
    from s3d_fast.config import small
    from s3d_fast.model import S3DNeRF
    from s3d_fast.model.losses import generator_losses

    cfg = small()
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model).to(DEV).train()
    B, T = 2, cfg.train.frames
    img, mask, c2w, K, mel = (x.to(DEV) for x in _model_inputs(cfg.model, B, T))
    Ro = cfg.model.output_resolution
    target = torch.rand(B, T, 3, Ro, Ro, device=DEV)
    masks = torch.nn.functional.interpolate(mask[:, None].float(), size=(Ro, Ro)).long().expand(B, T, Ro, Ro)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(img, mask, model.audio_tokens(mel), c2w, K, stratified=True)
        losses = generator_losses(out, target, masks.contiguous(), cfg.loss)
    assert torch.isfinite(losses["total"]) and out["rgb"].shape == (B, T, 3, Ro, Ro)
    losses["total"].backward()
    bad = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not bad, f"parameters without a finite gradient: {bad[:5]}"
    assert model.deformation.encoding.params.grad.abs().sum() > 0  # the hash grid learns through its CUDA backward


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from model_helpers import make_tiny_synthtalk

    out = tmp_path_factory.mktemp("cuda_train") / "ds"
    make_tiny_synthtalk(out)
    return out


def _train_args(data, out, steps, resume=False):
    from model_helpers import FAST_TRAIN

    args = ["--data", str(data), "--out", str(out), "--steps", str(steps), "--device", "cuda", "--quiet"]
    if resume:  # the run folder's config.json holds the rest
        return args + ["--resume"]
    for s in FAST_TRAIN:
        args += ["--set", s]
    return args


def _generator_rows(run):
    import csv

    with open(Path(run) / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r["stage"] == "generator"]


def test_train_on_cuda_single_process_and_resume(tiny_data, tmp_path):
    from s3d_fast.checkpoint import RunDirectory, load_checkpoint
    from s3d_fast.cli import main

    run = tmp_path / "run"
    assert main(["train"] + _train_args(tiny_data, run, 4)) == 0
    rows = _generator_rows(run)
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert all(math.isfinite(float(r["total"])) and math.isfinite(float(r["grad_norm"])) for r in rows)
    ckpt = load_checkpoint(RunDirectory(run).latest(), map_location="cuda", with_training=True)
    assert ckpt.step == 4 and all(torch.isfinite(v).all() for v in ckpt.model_state.values() if v.is_floating_point())
    assert main(["train"] + _train_args(tiny_data, run, 6, resume=True)) == 0
    assert [r["step"] for r in _generator_rows(run)][-2:] == ["5", "6"]


def test_train_on_cuda_under_torchrun_nccl(tiny_data, tmp_path):
    from s3d_fast.training.distributed import launch_with_torchrun

    run = tmp_path / "nccl"
    env = dict(os.environ)
    tests_dir = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), tests_dir, env.get("PYTHONPATH", "")])
    rc = launch_with_torchrun(1, "s3d_fast.training", _train_args(tiny_data, run, 3), env=env)
    assert rc == 0
    assert [r["step"] for r in _generator_rows(run)] == ["1", "2", "3"]


# -- MLP ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dims,in_ones,activation,output_activation",
    [
        ((31, 64, 64, 3), 1, "relu", "sigmoid"),
        ((32, 64, 16), 0, "relu", "none"),
        ((5, 128, 128, 128, 17), 2, "tanh", "exponential"),
        ((9, 33), 0, "none", "leakyrelu"),
    ],
)
def test_mlp_networks(dims, in_ones, activation, output_activation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3001, dims[0], generator=g, dtype=torch.float64).requires_grad_()
    fan_in = [dims[0] + in_ones, *dims[1:-1]]
    ws = [
        ((torch.rand(o, i, generator=g, dtype=torch.float64) * 2 - 1) / i**0.5).requires_grad_()
        for i, o in zip(fan_in, dims[1:])
    ]

    def fn(x, *ws):
        return ops.mlp(x, list(ws), activation, output_activation, in_ones)

    assert_same(fn, (x, *ws))
    assert_as_accurate_float32(fn, (x, *ws))
