"""Hash-grid encoding: fused kernels vs the pure-PyTorch reference, tcnn semantics."""

import math

import pytest
import torch

from s3d_fast import nn as s3d_nn
from s3d_fast import ops
from s3d_fast.ops import HashGridConfig

# Level sets: all dense, all hashed, and dense coarse levels under hashed fine ones.
LEVEL_SETS = {
    "dense": dict(n_levels=4, base_resolution=3, per_level_scale=1.5, log2_hashmap_size=20),
    "hashed": dict(n_levels=4, base_resolution=40, per_level_scale=1.5, log2_hashmap_size=8),
    "mixed": dict(n_levels=6, base_resolution=4, per_level_scale=1.8, log2_hashmap_size=10),
}


def _params(layout, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(layout.n_params, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)


@pytest.mark.parametrize("dims", [2, 3])
def test_level_sets_are_what_they_claim(dims):
    for name, kw in LEVEL_SETS.items():
        hashed = HashGridConfig(**kw).layout(dims).hashed
        expect = {"dense": not any(hashed), "hashed": all(hashed), "mixed": any(hashed) and not all(hashed)}
        assert expect[name], (name, dims, hashed)


def test_layout_matches_tcnn_arithmetic():
    # The benchmark configuration: base 16, per-level scale 1.5, 2^19 entries, 3-D.
    lay = HashGridConfig(
        n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5
    ).layout(3)
    for level in range(16):
        scale = math.ldexp(1.0, 0) * 16 * 1.5**level - 1  # float64; float32 differs in the last bits only
        assert lay.scales[level] == pytest.approx(scale, rel=1e-6)
        assert lay.resolutions[level] == math.ceil(lay.scales[level]) + 1
        dense = lay.resolutions[level] ** 3
        assert lay.sizes[level] == min(-(-dense // 8) * 8, 2**19)
        assert lay.hashed[level] == (dense > 2**19)
    assert lay.resolutions[:5] == (16, 24, 36, 54, 81)
    assert lay.hashed[:5] == (False, False, False, False, True)
    assert lay.offsets[0] == 0 and lay.n_params == lay.offsets[-1] * 2
    # Default tcnn HashGrid (per-level scale 2): 16^3, 32^3, 64^3 dense, then 2^19.
    lay = HashGridConfig().layout(3)
    assert lay.sizes[:4] == (4096, 32768, 262144, 524288)


def _encode_with_grads(encode, x, params, grad, args):
    x = x.clone().requires_grad_()
    params = params.clone().requires_grad_()
    out = encode(x, params, **args)
    return (out,) + torch.autograd.grad(out, (x, params), grad.to(out.dtype))


def _assert_as_accurate(fused, ref, gold, what, floor):
    """fused (float32) is no further from the float64 gold than the float32 reference is.

    Float32 sums over many points (a coarse dense entry gathers ~900 of them)
    round differently by summation order and by FMA contraction (-march=native
    differs across machines), so a fixed tolerance between the two float32
    results is either loose or flaky; their errors against float64 are not.
    """
    err_fused = (fused.double() - gold).abs().max().item()
    err_ref = (ref.double() - gold).abs().max().item()
    scale = max(1.0, gold.abs().max().item())
    assert err_fused <= max(2.0 * err_ref, floor * scale), (what, err_fused, err_ref, scale)


def _compare(dims, kw, interpolation, x, dtype=torch.float32, atol=1e-5):
    lay = HashGridConfig(interpolation=interpolation, **kw).layout(dims)
    params = _params(lay, dtype)
    args = dict(interpolation=interpolation, **kw)
    grad = torch.randn((x.shape[0], lay.n_output_dims), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fused = _encode_with_grads(ops.hashgrid_encode, x.to(dtype), params, grad, args)
    ref = _encode_with_grads(ops.reference.hashgrid_encode, x.to(dtype), params, grad, args)
    if dtype == torch.float64:
        for name, a, b in zip(("out", "dx", "dtable"), fused, ref):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)
        return fused[0]
    gold = _encode_with_grads(ops.reference.hashgrid_encode, x.double(), params.double(), grad, args)
    for name, a, b, g in zip(("out", "dx", "dtable"), fused, ref, gold):
        _assert_as_accurate(a, b, g, name, floor=atol)
    return fused[0]


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("levels", list(LEVEL_SETS))
def test_fused_matches_reference(levels, dims, interpolation):
    x = torch.rand(3000, dims, generator=torch.Generator().manual_seed(2))
    out = _compare(dims, LEVEL_SETS[levels], interpolation, x)
    assert out.shape == (3000, LEVEL_SETS[levels]["n_levels"] * 2)


@pytest.mark.parametrize("features", [1, 4, 8])
def test_other_feature_counts(features):
    kw = dict(LEVEL_SETS["mixed"], n_features_per_level=features)
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(3))
    _compare(3, kw, "linear", x)


def test_one_dimensional_inputs():
    x = torch.rand(500, 1, generator=torch.Generator().manual_seed(3))
    _compare(1, dict(n_levels=5, base_resolution=8, per_level_scale=2.0, log2_hashmap_size=6), "linear", x)


def test_points_outside_unit_box_wrap_like_tcnn():
    # tcnn does not clamp: cells wrap (uint32) and indices wrap modulo the level size.
    x = torch.rand(2000, 3, generator=torch.Generator().manual_seed(4)) * 3 - 1
    _compare(3, LEVEL_SETS["mixed"], "linear", x)
    _compare(2, LEVEL_SETS["dense"], "smoothstep", x[:, :2])


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("dims", [2, 3])
def test_gradcheck_float64(dims, interpolation):
    kw = dict(
        n_levels=3,
        n_features_per_level=2,
        base_resolution=3,
        per_level_scale=2.0,
        log2_hashmap_size=5,
        interpolation=interpolation,
    )
    lay = HashGridConfig(**kw).layout(dims)
    assert any(lay.hashed) and not all(lay.hashed)
    # Keep points away from cell faces, where linear interpolation has kinks.
    x = torch.rand(12, dims, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    params = _params(lay, torch.float64).requires_grad_()
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ops.hashgrid_encode(a, b, **kw), (x, params), eps=1e-7, atol=1e-6)


def _hand_encode(point, params, lay):
    """One point, scalar Python: the tcnn recipe written out longhand."""
    primes = (1, 2654435761, 805459861)
    f = lay.config.n_features_per_level
    out, grad_params, grad_x = [], {}, [0.0] * len(point)
    for level in range(lay.config.n_levels):
        scale, res, size = lay.scales[level], lay.resolutions[level], lay.sizes[level]
        pos = [c * scale + 0.5 for c in point]
        cell = [math.floor(p) for p in pos]
        frac = [p - c for p, c in zip(pos, cell)]
        acc = [0.0] * f
        for k in range(2 ** len(point)):
            vertex = [cell[d] + ((k >> d) & 1) for d in range(len(point))]
            weight = 1.0
            for d in range(len(point)):
                weight *= frac[d] if (k >> d) & 1 else 1 - frac[d]
            if lay.hashed[level]:
                index = 0
                for d, v in enumerate(vertex):
                    index ^= (v * primes[d]) & 0xFFFFFFFF
            else:
                index = sum(v * res**d for d, v in enumerate(vertex))
            entry = lay.offsets[level] + index % size
            for j in range(f):
                acc[j] += weight * params[entry * f + j]
                grad_params[entry * f + j] = grad_params.get(entry * f + j, 0.0) + weight
            for d in range(len(point)):
                other = weight / (frac[d] if (k >> d) & 1 else 1 - frac[d])
                grad_x[d] += (1 if (k >> d) & 1 else -1) * other * scale * sum(params[entry * f + j] for j in range(f))
        out += acc
    return out, grad_params, grad_x


@pytest.mark.parametrize("point", [(0.25, 0.625), (0.375, 0.8125, 0.5625)])
def test_hand_worked_case(point):
    # base 4, per-level scale 4: level 0 has scale 3, resolution 4 (dense, 4^D
    # entries); level 1 scale 15, resolution 16, 16^D > 2^6 entries: hashed.
    # The coordinates are dyadic so pos = x * scale + 0.5 is exact.
    dims = len(point)
    kw = dict(n_levels=2, n_features_per_level=2, log2_hashmap_size=6, base_resolution=4, per_level_scale=4.0)
    lay = HashGridConfig(**kw).layout(dims)
    assert lay.scales == (3.0, 15.0) and lay.resolutions == (4, 16)
    assert lay.hashed == (False, True) and lay.sizes == (4**dims, 64)
    params = _params(lay, torch.float64, seed=7)
    expect_out, expect_gp, expect_gx = _hand_encode(point, params.tolist(), lay)
    x = torch.tensor([point], dtype=torch.float64, requires_grad=True)
    p = params.clone().requires_grad_()
    out = ops.hashgrid_encode(x, p, **kw)
    torch.testing.assert_close(out[0], torch.tensor(expect_out, dtype=torch.float64))
    gx, gp = torch.autograd.grad(out.sum(), (x, p))
    dense_gp = torch.zeros_like(params)
    for index, value in expect_gp.items():
        dense_gp[index] = value
    torch.testing.assert_close(gp, dense_gp)
    torch.testing.assert_close(gx[0], torch.tensor(expect_gx, dtype=torch.float64))


@pytest.mark.parametrize("levels", ["mixed", "few"])
def test_cpu_backward_is_deterministic_across_runs_and_thread_counts(levels):
    # "few": 2 levels, so 3 threads split each level's entries into ranges.
    kw = LEVEL_SETS["mixed"] if levels == "mixed" else dict(LEVEL_SETS["mixed"], n_levels=2)
    lay = HashGridConfig(**kw).layout(3)
    # Many points per entry, so float summation order would show if it varied.
    x = torch.rand(20000, 3, generator=torch.Generator().manual_seed(8))
    params = _params(lay)
    grad = torch.randn(20000, lay.n_output_dims, generator=torch.Generator().manual_seed(9))
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (2, 2, 1, 3):
            torch.set_num_threads(threads)
            xr, pr = x.clone().requires_grad_(), params.clone().requires_grad_()
            results.append(torch.autograd.grad(ops.hashgrid_encode(xr, pr, **kw), (xr, pr), grad))
    finally:
        torch.set_num_threads(before)
    for gx, gp in results[1:]:
        assert torch.equal(gx, results[0][0]) and torch.equal(gp, results[0][1])
    ref_x, ref_p = x.clone().requires_grad_(), params.clone().requires_grad_()
    expect = torch.autograd.grad(ops.reference.hashgrid_encode(ref_x, ref_p, **kw), (ref_x, ref_p), grad)
    torch.testing.assert_close(results[0][1], expect[1], rtol=1e-5, atol=1e-4)


def test_empty_leading_dims_and_non_contiguous():
    kw = LEVEL_SETS["mixed"]
    lay = HashGridConfig(**kw).layout(3)
    params = _params(lay).requires_grad_()
    empty = torch.zeros(0, 3, requires_grad=True)
    out = ops.hashgrid_encode(empty, params, **kw)
    assert out.shape == (0, lay.n_output_dims)
    out.sum().backward()
    assert params.grad.abs().sum() == 0 and empty.grad.shape == (0, 3)
    wide = torch.rand(4, 50, 5, generator=torch.Generator().manual_seed(10))
    x = wide[..., 1:4]  # (4, 50, 3), not contiguous
    assert not x.is_contiguous()
    out = ops.hashgrid_encode(x, params.detach(), **kw)
    assert out.shape == (4, 50, lay.n_output_dims)
    ref = ops.reference.hashgrid_encode(x.contiguous().view(-1, 3), params.detach(), **kw)
    torch.testing.assert_close(out.view(-1, lay.n_output_dims), ref, rtol=1e-5, atol=1e-6)


def test_bad_inputs_get_clear_errors():
    kw = LEVEL_SETS["mixed"]
    params = _params(HashGridConfig(**kw).layout(3))
    x = torch.rand(10, 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.hashgrid_encode(x.to(torch.int32), params, **kw)
    with pytest.raises(TypeError, match="share a dtype"):
        ops.hashgrid_encode(x.double(), params, **kw)
    with pytest.raises(ValueError, match="D in 1..3"):
        ops.hashgrid_encode(torch.rand(10, 4), params, **kw)
    with pytest.raises(ValueError, match="params has"):
        ops.hashgrid_encode(x, params[:-2], **kw)
    with pytest.raises(ValueError, match="1-D"):
        ops.hashgrid_encode(x, params.view(-1, 2), **kw)
    with pytest.raises(ValueError, match="interpolation"):
        ops.hashgrid_encode(x, params, **dict(kw, interpolation="cubic"))
    with pytest.raises(ValueError, match="n_features_per_level"):
        ops.hashgrid_encode(x, params, **dict(kw, n_features_per_level=3))


def test_module_layout_init_and_forward():
    grid = s3d_nn.HashGrid(n_input_dims=3, **LEVEL_SETS["mixed"])
    lay = grid.layout
    assert grid.params.dim() == 1 and grid.params.numel() == lay.n_params
    assert grid.params.abs().max() <= 1e-4  # tcnn's uniform(-1e-4, 1e-4)
    assert grid.offsets == lay.offsets and grid.sizes == lay.sizes and len(grid.resolutions) == 6
    assert grid.level_params(2).shape == (lay.sizes[2], 2)
    x = torch.rand(7, 11, 3, requires_grad=True)
    out = grid(x)
    assert out.shape == (7, 11, grid.n_output_dims)
    out.square().sum().backward()
    assert grid.params.grad is not None and x.grad.shape == x.shape
    torch.testing.assert_close(out, ops.reference.hashgrid_encode(x, grid.params, grid.config))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        grid(torch.rand(5, 2))
    with pytest.raises(ValueError, match="backend"):
        s3d_nn.HashGrid(backend="magic")


def test_from_tcnn_config():
    cfg = {
        "otype": "HashGrid",
        "n_levels": 16,
        "n_features_per_level": 2,
        "log2_hashmap_size": 19,
        "base_resolution": 16,
        "per_level_scale": 1.5,
    }
    grid = s3d_nn.HashGrid.from_tcnn_config(3, cfg)
    assert grid.layout == s3d_nn.HashGrid(3, 16, 2, 19, 16, 1.5).layout
    assert s3d_nn.HashGrid.from_tcnn_config(3, grid.tcnn_config()).layout == grid.layout
    dense = s3d_nn.HashGrid.from_tcnn_config(
        2, {"otype": "DenseGrid", "n_levels": 3, "base_resolution": 8, "interpolation": "Smoothstep"}
    )
    assert not any(dense.layout.hashed) and dense.config.interpolation == "smoothstep"
    assert dense.layout.sizes[2] == 256**2  # tcnn's dense default: the finest level at 256 cells
    by_features = s3d_nn.HashGrid.from_tcnn_config(3, {"otype": "Grid", "type": "Hash", "n_features": 8})
    assert by_features.config.n_levels == 4
    for bad in (
        {"otype": "Frequency"},
        {"otype": "TiledGrid"},
        {"otype": "Grid", "type": "Tiled"},
        {"otype": "HashGrid", "interpolation": "Nearest"},
        {"otype": "HashGrid", "bogus": 1},
        {"otype": "HashGrid", "n_levels": 4, "n_features": 8},
        {"otype": "HashGrid", "n_features": 7},
    ):
        with pytest.raises(ValueError):
            s3d_nn.HashGrid.from_tcnn_config(3, bad)


def test_config_is_validated_once_and_frozen():
    config = HashGridConfig(n_levels=4, interpolation="Smoothstep", grid_type="DENSE", per_level_scale=2)
    assert config.interpolation == "smoothstep" and config.grid_type == "dense"
    assert config.per_level_scale == 2.0 and isinstance(config.per_level_scale, float)
    with pytest.raises(AttributeError):
        config.n_levels = 5
    assert config.layout(3) is config.layout(3)  # one layout per (config, D)
    assert HashGridConfig.from_tcnn(config.to_tcnn()) == config
    for bad in (
        dict(n_levels=0),
        dict(n_levels=33),
        dict(n_features_per_level=3),
        dict(log2_hashmap_size=32),
        dict(base_resolution=1.5),
        dict(per_level_scale=float("nan")),
        dict(grid_type="tiled"),
    ):
        with pytest.raises(ValueError):
            HashGridConfig(**bad)
    with pytest.raises(ValueError, match="n_input_dims"):
        config.layout(4)


def test_ops_and_module_take_a_config_or_its_fields():
    kw = LEVEL_SETS["mixed"]
    config = HashGridConfig(**kw)
    params = _params(config.layout(3))
    x = torch.rand(100, 3, generator=torch.Generator().manual_seed(11))
    by_config = ops.hashgrid_encode(x, params, config)
    assert torch.equal(by_config, ops.hashgrid_encode(x, params, **kw))
    assert torch.equal(ops.reference.hashgrid_encode(x, params, config), ops.reference.hashgrid_encode(x, params, **kw))
    with pytest.raises(TypeError, match="not both"):
        ops.hashgrid_encode(x, params, config, n_levels=6)
    with pytest.raises(TypeError, match="n_level"):
        ops.hashgrid_encode(x, params, n_level=6)
    # nn.HashGrid keeps its positional form (n_input_dims, n_levels, F, log2 T, base, scale, ...).
    positional = s3d_nn.HashGrid(3, 6, 2, 10, 4, 1.8, backend="s3d")
    assert positional.config == config == s3d_nn.HashGrid(3, config=config).config
    with pytest.raises(TypeError, match="not both"):
        s3d_nn.HashGrid(3, 6, config=config)


def test_tcnn_backend_refused_where_unusable():
    grid = s3d_nn.HashGrid(n_input_dims=2, n_levels=2, backend="tcnn")
    with pytest.raises(ValueError, match="tinycudann"):
        grid(torch.rand(4, 2))
    auto = s3d_nn.HashGrid(n_input_dims=2, n_levels=2)
    assert auto(torch.rand(4, 2)).shape == (4, 4)  # auto falls back to the fused kernels on CPU


def _tcnn_usable():
    try:
        import tinycudann  # noqa: F401
    except Exception:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _tcnn_usable(), reason="needs tinycudann and a CUDA device")
def test_tcnn_backend_matches_ours_on_cuda():
    grid = s3d_nn.HashGrid(3, **LEVEL_SETS["mixed"], backend="tcnn").cuda()
    with torch.no_grad():
        grid.params.uniform_(-1, 1)
    x = torch.rand(4096, 3, device="cuda")
    ours = ops.hashgrid_encode(x, grid.params, grid.config)
    torch.testing.assert_close(grid(x), ours, rtol=1e-3, atol=1e-3)


def test_random_gather_probe_reads_what_it_claims():
    from aids.extension import random_gather_rate_probe

    table = torch.ones(1000, 2)
    assert random_gather_rate_probe(table, 4096) == 2 * 4096
    with pytest.raises(RuntimeError, match="float32"):
        random_gather_rate_probe(torch.ones(10, 3), 10)
