"""s3d_fast.compat.tinycudann: tiny-cuda-nn's documented behaviour restated as tests; each
encoding against a float64 reference written here (or s3d-fast's hash-grid reference),
gradients, tcnn's parameter layouts and counts, and its errors."""

import io
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

import s3d_fast.compat.tinycudann as tcnn
from s3d_fast.nn import HashGrid
from s3d_fast.ops import HashGridConfig
from s3d_fast.ops import reference as ref

HASH = {
    "otype": "HashGrid",
    "n_levels": 6,
    "n_features_per_level": 2,
    "log2_hashmap_size": 10,
    "base_resolution": 4,
    "per_level_scale": 1.8,
}
MLP = {
    "otype": "FullyFusedMLP",
    "activation": "ReLU",
    "output_activation": "None",
    "n_neurons": 32,
    "n_hidden_layers": 2,
}


def _rand_params(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.params.copy_(torch.rand(module.params.shape, generator=g, dtype=torch.float64) * 2 - 1)
    return module


def _double(module):
    return _rand_params(module).double()


def _x(n, dims, seed=1):
    return torch.rand(n, dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _gradcheck(module, x):
    """Input gradients by gradcheck; parameter gradients along a random direction against
    central differences (a full Jacobian over a table is too slow for a test)."""
    params = module.params.detach()
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: module._compute(inp, params), (x,), atol=1e-6)
    if params.numel() == 0:
        return
    x = x.detach()
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(module._compute(x, params).shape, generator=g, dtype=params.dtype)
    direction = torch.randn(params.shape, generator=g, dtype=params.dtype)
    p = params.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((module._compute(x, p) * weight).sum(), p)
    eps = 1e-6
    plus = (module._compute(x, params + eps * direction) * weight).sum()
    minus = (module._compute(x, params - eps * direction) * weight).sum()
    assert float((grad * direction).sum()) == pytest.approx(float((plus - minus) / (2 * eps)), rel=1e-6, abs=1e-9)


# ---- grids


@pytest.mark.parametrize("dims", [2, 3])
def test_hashgrid_equals_the_hashgrid_reference_in_float64_with_gradients(dims):
    enc = _double(tcnn.Encoding(dims, HASH))
    x = _x(64, dims).requires_grad_(True)
    out = enc(x)
    expect = ref.hashgrid_encode(x, enc.params, HashGridConfig.from_tcnn(HASH))
    torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, enc.params), grad)
    want = torch.autograd.grad(expect, (x, enc.params), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_a_tcnn_config_gives_the_same_encoding_as_nn_hashgrid_from_tcnn_config():
    config = dict(HASH, interpolation="Smoothstep")
    enc = tcnn.Encoding(3, config, dtype=torch.float32)
    grid = HashGrid.from_tcnn_config(3, config, backend="s3d")
    assert enc.params.shape == grid.params.shape
    assert enc.n_output_dims == grid.n_output_dims
    with torch.no_grad():
        grid.params.copy_(enc.params)
    x = _x(200, 3).float()
    torch.testing.assert_close(enc(x), grid(x), rtol=0, atol=0)


@pytest.mark.parametrize("otype", ["HashGrid", "DenseGrid"])
def test_defaults_left_out_of_a_tcnn_config_agree_with_nn_hashgrid(otype):
    """A config without per_level_scale: tcnn's default (dense: finest level at 256 cells)."""
    config = {"otype": otype, "n_levels": 4, "n_features_per_level": 2, "base_resolution": 8}
    enc = tcnn.Encoding(3, config, dtype=torch.float32)
    grid = HashGrid.from_tcnn_config(3, config, backend="s3d")
    assert enc.params.shape == grid.params.shape
    assert grid.config.per_level_scale == pytest.approx(2.0 if otype == "HashGrid" else 2.0 ** (5 / 3), rel=1e-6)
    with torch.no_grad():
        grid.params.copy_(enc.params)
    x = _x(200, 3).float()
    torch.testing.assert_close(enc(x), grid(x), rtol=0, atol=0)


def test_hashgrid_params_count_is_tcnns_formula():
    # tcnn: per level min(next_multiple(res^D, 8), 2^log2_hashmap_size) entries of F values,
    # res = ceil(base * scale^l - 1) + 1 in float32.
    enc = tcnn.Encoding(3, HASH)
    total = 0
    for level in range(HASH["n_levels"]):
        scale = np.float32(np.exp2(np.float32(level) * np.log2(np.float32(1.8))) * np.float32(4) - np.float32(1))
        res = math.ceil(float(scale)) + 1
        total += min(-(-(res**3) // 8) * 8, 2**10)
    assert enc.params.numel() == total * 2
    assert enc.n_output_dims == 12


def test_densegrid_defaults_to_tcnns_per_level_scale_and_is_dense():
    config = {"otype": "DenseGrid", "n_levels": 4, "n_features_per_level": 2, "base_resolution": 8}
    enc = _double(tcnn.Encoding(2, config))
    scale = math.exp(math.log(256 / 8) / 3)  # tcnn: the finest level at 256
    assert enc.spec.per_level_scale == pytest.approx(scale, rel=1e-6)
    lay = enc.spec.layout
    assert not any(lay.hashed)
    x = _x(50, 2)
    same = HashGridConfig(4, 2, 19, 8, enc.spec.per_level_scale, grid_type="dense")
    torch.testing.assert_close(enc(x), ref.hashgrid_encode(x, enc.params, same), rtol=1e-12, atol=1e-12)


_PRIMES = (1, 2654435761, 805459861, 3674653429)


def _grid_point_reference(x, params, grid_type, n_levels, features, log2_size, base, plscale):
    """Point by point, corner by corner, in Python integers: tcnn's grid encoding."""
    dims = len(x)
    out, offset = [], 0
    for level in range(n_levels):
        scale = float(np.float32(np.exp2(np.float32(level) * np.log2(np.float32(plscale))) * base - np.float32(1)))
        res = math.ceil(scale) + 1
        size = -(-(res**dims) // 8) * 8
        size = (
            min(size, base**dims) if grid_type == "tiled" else min(size, 2**log2_size) if grid_type == "hash" else size
        )
        pos = [x[d] * scale + 0.5 for d in range(dims)]
        cell = [math.floor(p) for p in pos]
        frac = [p - c for p, c in zip(pos, cell)]
        feat = [0.0] * features
        for corner in itertools.product((0, 1), repeat=dims):
            v = [c + b for c, b in zip(cell, corner)]
            w = math.prod(f if b else 1 - f for f, b in zip(frac, corner))
            dense = sum(v[d] * res**d for d in range(dims)) % 2**32
            if grid_type == "hash" and res**dims > size:
                index = 0
                for d in range(dims):
                    index ^= v[d] * _PRIMES[d] % 2**32
            else:
                index = dense
            index = offset + index % size
            for f in range(features):
                feat[f] += w * params[index * features + f]
        out += feat
        offset += size
    return out


@pytest.mark.parametrize("grid_type,dims", [("tiled", 2), ("tiled", 3), ("hash", 4), ("dense", 4)])
def test_grids_the_fused_op_does_not_cover_equal_a_pointwise_reference(grid_type, dims):
    otype = {"tiled": "TiledGrid", "hash": "HashGrid", "dense": "DenseGrid"}[grid_type]
    config = {"otype": otype, "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 9}
    config.update(base_resolution=4, per_level_scale=1.6)
    enc = _double(tcnn.Encoding(dims, config))
    assert not enc.spec.fused
    x = _x(12, dims)
    expect = torch.tensor(
        [_grid_point_reference(p.tolist(), enc.params.detach().tolist(), grid_type, 4, 2, 9, 4, 1.6) for p in x],
        dtype=torch.float64,
    )
    torch.testing.assert_close(enc(x), expect, rtol=1e-12, atol=1e-12)
    _gradcheck(enc, x[:4])


# ---- the other encodings


def _sh_reference(v, degree):
    """Real SH from scipy's complex ones (which carry the Condon-Shortley phase), index l*l + l + m."""
    theta = np.arccos(np.clip(v[:, 2], -1, 1))
    phi = np.arctan2(v[:, 1], v[:, 0])
    cols = []
    for band in range(degree):
        for m in range(-band, band + 1):
            y = special.sph_harm_y(band, abs(m), theta, phi)
            if m == 0:
                cols.append(y.real)
            elif m > 0:
                cols.append(math.sqrt(2) * y.real)
            else:
                cols.append(math.sqrt(2) * y.imag)
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("degree", range(1, 9))
def test_spherical_harmonics_of_directions_in_the_unit_cube(degree):
    enc = tcnn.Encoding(3, {"otype": "SphericalHarmonics", "degree": degree}).double()
    v = torch.nn.functional.normalize(torch.randn(40, 3, dtype=torch.float64), dim=1)
    out = enc((v + 1) / 2)  # tcnn's convention: directions mapped to [0, 1]
    assert out.shape == (40, degree * degree)
    torch.testing.assert_close(out, torch.from_numpy(_sh_reference(v.numpy(), degree)), rtol=1e-9, atol=1e-9)
    _gradcheck(enc, ((v[:4] + 1) / 2))


def test_spherical_harmonics_refuses_degree_9_and_2d_inputs():
    with pytest.raises(ValueError, match="degree"):
        tcnn.Encoding(3, {"otype": "SphericalHarmonics", "degree": 9})
    with pytest.raises(ValueError, match="n_input_dims"):
        tcnn.Encoding(2, {"otype": "SphericalHarmonics"})


def test_frequency_layout_is_the_documented_one():
    # DOCUMENTATION.md: with n_frequencies 4, x becomes sin(pi x), cos(pi x), sin(2 pi x), cos(2 pi x), ...
    enc = tcnn.Encoding(2, {"otype": "Frequency", "n_frequencies": 4}).double()
    x = _x(30, 2) * 4 - 2
    out = enc(x)
    expect = []
    for d in range(2):
        for k in range(4):
            expect += [torch.sin(2**k * math.pi * x[:, d]), torch.cos(2**k * math.pi * x[:, d])]
    torch.testing.assert_close(out, torch.stack(expect, 1), rtol=1e-12, atol=1e-12)
    _gradcheck(enc, x[:5])


def test_triangle_wave_is_a_phase_shifted_triangle_per_octave():
    enc = tcnn.Encoding(3, {"otype": "TriangleWave", "n_frequencies": 5}).double()
    x = _x(30, 3) * 3 - 1
    out = enc(x)
    cols = []
    for d in range(3):
        for k in range(5):
            v = x[:, d] * 2.0 ** (k - 1) + k / 4
            cols.append(
                1 - 2 / math.pi * torch.arccos(torch.cos(2 * math.pi * v))
            )  # 1 at half-integers, -1 at integers
    torch.testing.assert_close(out, torch.stack(cols, 1), rtol=1e-9, atol=1e-9)
    _gradcheck(enc, x[:5])


def test_oneblob_is_the_wrapped_quartic_blob_mass_per_bin():
    bins = 8
    enc = tcnn.Encoding(2, {"otype": "OneBlob", "n_bins": bins}).double()
    x = _x(6, 2)
    out = enc(x)

    def kernel(t):  # quartic kernel of radius 1 / bins, unit mass
        u = t * bins
        return 15 / 16 * (1 - u * u) ** 2 * bins if abs(u) < 1 else 0.0

    for i, d in itertools.product(range(6), range(2)):
        centre = float(x[i, d])
        for k in range(bins):
            mass = sum(
                integrate.quad(lambda s, c=centre, sh=shift: kernel(s - c + sh), k / bins, (k + 1) / bins)[0]
                for shift in (-1, 0, 1)
            )
            assert float(out[i, d * bins + k]) == pytest.approx(mass, abs=1e-9)
    torch.testing.assert_close(out.view(6, 2, bins).sum(-1), torch.ones(6, 2, dtype=torch.float64))
    _gradcheck(enc, x[:3])
    with pytest.raises(ValueError, match="n_bins"):
        tcnn.Encoding(2, {"otype": "OneBlob", "n_bins": 12})


def test_identity_scales_and_offsets():
    enc = tcnn.Encoding(3, {"otype": "Identity", "scale": 2.5, "offset": -0.5}).double()
    x = _x(10, 3)
    torch.testing.assert_close(enc(x), x * 2.5 - 0.5)


def test_composite_concatenates_nested_encodings_padding_before_a_grid():
    grid = dict(HASH, n_features_per_level=4, n_levels=3)
    config = {
        "otype": "Composite",
        "nested": [
            {"n_dims_to_encode": 3, "otype": "TriangleWave", "n_frequencies": 3},  # 9 values, padded to 12 with ones
            {"n_dims_to_encode": 3, **grid},
            {"otype": "Identity"},  # the remaining 2 dims
        ],
    }
    enc = _double(tcnn.Encoding(8, config))
    assert enc.n_output_dims == 12 + 12 + 2
    x = _x(20, 8)
    tri = tcnn.Encoding(3, {"otype": "TriangleWave", "n_frequencies": 3}).double()
    hashed = tcnn.Encoding(3, grid).double()
    assert enc.params.numel() == hashed.params.numel()
    with torch.no_grad():
        hashed.params.copy_(enc.params)
    expect = torch.cat([tri(x[:, :3]), torch.ones(20, 3, dtype=torch.float64), hashed(x[:, 3:6]), x[:, 6:]], 1)
    torch.testing.assert_close(enc(x), expect, rtol=0, atol=0)


def test_composite_refuses_nested_dims_beyond_its_input():
    config = {"otype": "Composite", "nested": [{"n_dims_to_encode": 4, "otype": "Identity"}]}
    with pytest.raises(ValueError, match="more than the 3"):
        tcnn.Encoding(3, config)


# ---- networks


ACTIVATIONS = {
    "None": lambda x: x,
    "ReLU": lambda x: x.clamp_min(0),
    "LeakyReLU": lambda x: x.clamp_min(0) + 0.01 * x.clamp_max(0),
    "Exponential": torch.exp,
    "Sine": torch.sin,
    "Sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
    "Squareplus": lambda x: 0.5 * (10 * x + torch.sqrt(100 * x * x + 4)) / 10,
    "Softplus": lambda x: torch.log(torch.exp(10 * x) + 1) / 10,
    "Tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
    "SiLU": lambda x: x / (1 + torch.exp(-x)),
}


def _mlp_reference(x_padded, params, widths, act, out_act, n_out):
    """Bias-free layers of (out, in) row-major matrices, taken from ``params`` in order."""
    h, start = x_padded, 0
    for i, (rows, cols) in enumerate(zip(widths[1:], widths[:-1])):
        w = params[start : start + rows * cols].view(rows, cols)
        start += rows * cols
        h = h @ w.T
        h = act(h) if i < len(widths) - 2 else out_act(h)
    assert start == params.numel()
    return h[:, :n_out]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_network_is_a_padded_bias_free_mlp_with_tcnns_activations(name):
    config = dict(MLP, activation=name, output_activation=name)
    net = tcnn.Network(5, 3, config)
    # tcnn: input padded to 16 (with ones), 32-wide hidden layers, output padded to 16
    assert net.params.numel() == 16 * 32 + 32 * 32 + 32 * 16
    with torch.no_grad():
        net.params.mul_(0.5)
    net = net.double()
    x = _x(25, 5) * 2 - 1
    padded = torch.cat([x, torch.ones(25, 11, dtype=torch.float64)], 1)
    expect = _mlp_reference(padded, net.params, [16, 32, 32, 16], ACTIVATIONS[name], ACTIVATIONS[name], 3)
    torch.testing.assert_close(net(x), expect, rtol=1e-10, atol=1e-10)
    _gradcheck(net, x[:3])


def test_cutlass_mlp_takes_any_width_and_no_hidden_layer():
    wide = tcnn.Network(20, 7, {"otype": "CutlassMLP", "n_neurons": 48, "n_hidden_layers": 3})
    assert wide.params.numel() == 32 * 48 + 2 * 48 * 48 + 48 * 16
    linear = tcnn.Network(4, 2, {"otype": "CutlassMLP", "n_hidden_layers": 0}).double()
    x = _x(9, 4)
    padded = torch.cat([x, torch.ones(9, 12, dtype=torch.float64)], 1)
    torch.testing.assert_close(linear(x), (padded @ linear.params.view(16, 16).T)[:, :2])


def test_fully_fused_mlp_refuses_widths_tcnn_refuses():
    with pytest.raises(ValueError, match="n_neurons"):
        tcnn.Network(3, 1, dict(MLP, n_neurons=48))
    with pytest.raises(ValueError, match="n_hidden_layers"):
        tcnn.Network(3, 1, dict(MLP, n_hidden_layers=0))


def test_network_with_input_encoding_is_the_mlp_over_the_encoding_network_params_first():
    # Instant-NGP's density network: a hash grid (32 values) into a 64-wide MLP, 16 outputs
    config = dict(HASH, n_levels=16, per_level_scale=1.3)
    mlp = dict(MLP, n_neurons=64, n_hidden_layers=1)
    model = _double(tcnn.NetworkWithInputEncoding(3, 16, config, mlp))
    enc = tcnn.Encoding(3, config).double()
    n_mlp = 32 * 64 + 64 * 16  # the encoding's 32 outputs need no padding
    assert model.params.numel() == n_mlp + enc.params.numel()
    with torch.no_grad():
        enc.params.copy_(model.params[n_mlp:])
    x = _x(40, 3)
    expect = _mlp_reference(enc(x), model.params[:n_mlp], [32, 64, 16], ACTIVATIONS["ReLU"], lambda v: v, 16)
    torch.testing.assert_close(model(x), expect, rtol=1e-10, atol=1e-12)
    _gradcheck(model, x[:3])


def test_spherical_harmonics_into_an_mlp_pads_in_front_with_ones():
    # tcnn writes the SH encoding's padding before its values
    model = _double(tcnn.NetworkWithInputEncoding(3, 3, {"otype": "SphericalHarmonics", "degree": 3}, MLP))
    sh = tcnn.Encoding(3, {"otype": "SphericalHarmonics", "degree": 3}).double()
    x = _x(10, 3)
    padded = torch.cat([torch.ones(10, 7, dtype=torch.float64), sh(x)], 1)
    expect = _mlp_reference(padded, model.params, [16, 32, 32, 16], ACTIVATIONS["ReLU"], lambda v: v, 3)
    torch.testing.assert_close(model(x), expect, rtol=1e-10, atol=1e-12)


# ---- parameters: initialisation, saving and loading


def test_generator_is_pcg32():
    # pcg32's published demo: pcg32_srandom(42, 54) gives 0xa15c02b7 0x7b47f409 0xba1d3330 ...
    from s3d_fast.compat.tinycudann._pcg32 import Pcg32

    words = [0xA15C02B7, 0x7B47F409, 0xBA1D3330, 0x83D2F293, 0xBFA4784B, 0xCBED606E]
    draws = Pcg32(42, 54).next_floats(6)
    np.testing.assert_array_equal(draws, np.array([(w >> 9) / 2**23 for w in words], dtype=np.float32))


def test_initialisation_is_tcnns_distribution_and_follows_the_seed():
    model = tcnn.NetworkWithInputEncoding(3, 4, HASH, MLP, seed=7)
    n_mlp = model.mlp.n_params
    table, weights = model.params.detach()[n_mlp:], model.params.detach()[:n_mlp]
    assert model.params.dtype == torch.float32
    assert float(table.abs().max()) <= 1e-4 and float(table.std()) == pytest.approx(2e-4 / math.sqrt(12), rel=0.05)
    first = weights[: 16 * 32]  # Xavier-uniform over the padded (32, 16) matrix
    bound = math.sqrt(6 / (16 + 32))
    assert float(first.abs().max()) <= bound and float(first.abs().max()) > 0.9 * bound
    again = tcnn.NetworkWithInputEncoding(3, 4, HASH, MLP, seed=7)
    other = tcnn.NetworkWithInputEncoding(3, 4, HASH, MLP, seed=8)
    assert torch.equal(model.params, again.params) and not torch.equal(model.params, other.params)


def test_params_saved_from_one_module_load_into_another():
    source = _rand_params(tcnn.NetworkWithInputEncoding(3, 4, HASH, MLP, seed=1))
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)  # what a tcnn user saves: {"params": flat float32}
    buffer.seek(0)
    state = torch.load(buffer)
    assert list(state) == ["params"] and state["params"].dim() == 1
    target = tcnn.NetworkWithInputEncoding(3, 4, HASH, MLP, seed=2)
    target.load_state_dict(state)
    x = _x(30, 3).float()
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


# ---- precision, errors, module surface


def test_outputs_are_float32_on_a_cpu_or_the_dtype_asked_for():
    x = torch.rand(8, 3)
    assert tcnn.Encoding(3, HASH)(x).dtype == torch.float32
    assert tcnn.Network(3, 2, MLP)(x).dtype == torch.float32
    assert tcnn.Encoding(3, HASH, dtype=torch.float16)(x).dtype == torch.float16
    with pytest.raises(ValueError, match="fp32 or fp16"):
        tcnn.Encoding(3, HASH, dtype=torch.bfloat16)


@pytest.mark.parametrize(
    "build,key",
    [
        (lambda: tcnn.Encoding(3, dict(HASH, n_bins=4)), "n_bins"),
        (lambda: tcnn.Encoding(3, dict(HASH, interpolation="Nearest")), "interpolation"),
        (lambda: tcnn.Encoding(3, {"otype": "Frequency", "degree": 2}), "degree"),
        (lambda: tcnn.Network(3, 1, dict(MLP, feedback_alignment=True)), "feedback_alignment"),
        (lambda: tcnn.Network(3, 1, dict(MLP, activation="GELU")), "activation"),
        (lambda: tcnn.Encoding(3, {"otype": "Fourier"}), "Fourier"),
    ],
)
def test_an_unsupported_config_is_one_error_naming_it(build, key):
    with pytest.raises(ValueError, match=key):
        build()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    model = tcnn.Network(3, 1, MLP)
    for move in (lambda m: m.cuda(), lambda m: m.to("cuda"), lambda m: m.to(torch.device("cuda", 0))):
        with pytest.raises(RuntimeError, match=r"s3d_fast\.compat\.tinycudann.*no CUDA device"):
            move(model)
    assert model.to("cpu") is model


def test_module_surface_matches_tinycudann():
    assert isinstance(tcnn.__version__, str) and tcnn.__version__.startswith("2.0")
    assert tcnn.free_temporary_memory() is None
    assert tcnn.supports_jit_fusion() is False
    enc = tcnn.Encoding(3, HASH)
    assert (enc.n_input_dims, enc.n_output_dims, enc.seed) == (3, 12, 1337)
    assert "n_output_dims=12" in repr(enc)
