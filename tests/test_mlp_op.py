"""Fused MLP (s3d_fast.ops.mlp) against the F.linear chain of the reference: forward and
every gradient over widths, depths, activations and the ones-padding; gradcheck in float64;
edge cases and errors; tiny-cuda-nn's networks run on it."""

import itertools

import pytest
import torch

from s3d_fast import ops
from s3d_fast.compat import tinycudann as tcnn
from s3d_fast.ops.mlp_op import ACTIVATIONS, mlp_supported


def _weights(dims, dtype=torch.float64, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    ws = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        w = (torch.rand(fan_out, fan_in, generator=g, dtype=torch.float64) * 2 - 1) * (3.0 / fan_in) ** 0.5
        ws.append(w.to(dtype).requires_grad_(grad))
    return ws


def _x(n, cols, dtype=torch.float64, seed=1, grad=True):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, cols, generator=g, dtype=torch.float64)).to(dtype).requires_grad_(grad)


def _run(fn, x, ws, kw, seed=2):
    out = fn(x, ws, **kw)
    leaves = [t for t in (x, *ws) if t.requires_grad]
    if not leaves:
        return out, []
    g = torch.Generator().manual_seed(seed)
    cot = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    return out, list(torch.autograd.grad(out, leaves, cot))


def _compare(x, ws, rtol, atol, **kw):
    out, grads = _run(ops.mlp, x, ws, kw)
    ref, ref_grads = _run(ops.reference.mlp, x, ws, kw)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol, msg=lambda m: f"output: {m}")
    assert len(grads) == len(ref_grads)
    for i, (a, b) in enumerate(zip(grads, ref_grads)):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, i=i: f"gradient {i}: {m}")
    return out, grads


@pytest.mark.parametrize("width", [16, 32, 64, 128])
@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
def test_widths_and_depths_float64(width, hidden_layers):
    dims = [24] + [width] * hidden_layers + [5]
    _compare(_x(70, 24), _weights(dims), 1e-12, 1e-12)


@pytest.mark.parametrize("in_cols,out_cols", [(3, 1), (32, 16), (40, 17), (64, 48), (100, 3)])
def test_no_hidden_layer_any_widths(in_cols, out_cols):
    _compare(_x(67, in_cols), _weights([in_cols, out_cols]), 1e-12, 1e-12, output_activation="sigmoid")


@pytest.mark.parametrize("activation,output_activation", list(itertools.product(ACTIVATIONS, ACTIVATIONS)))
def test_every_activation_pair(activation, output_activation):
    # Small weights keep the exponentials finite through two hidden layers.
    ws = [w.detach().mul(0.5).requires_grad_() for w in _weights([19, 32, 32, 7])]
    _compare(_x(131, 18), ws, 1e-11, 1e-12, activation=activation, output_activation=output_activation, in_ones=1)


@pytest.mark.parametrize("in_ones", [0, 1, 13])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
def test_ones_padding_and_rows_past_the_tile(in_ones, n):
    _compare(_x(n, 19), _weights([19 + in_ones, 48, 3]), 1e-12, 1e-12, in_ones=in_ones, output_activation="relu")


def test_instant_ngp_networks_float32():
    # The example's density (32 -> 64 -> 16) and colour (31 + one -> 64 -> 64 -> 3) networks.
    x = _x(5000, 32, torch.float32)
    out, _ = _compare(x, _weights([32, 64, 16], torch.float32), 1e-4, 1e-5)
    assert out.shape == (5000, 16)
    x = _x(5000, 31, torch.float32)
    out, _ = _compare(x, _weights([32, 64, 64, 3], torch.float32), 1e-4, 1e-5, output_activation="sigmoid", in_ones=1)
    assert out.shape == (5000, 3)


@pytest.mark.parametrize("x_grad,w_grad", [(True, False), (False, True), (False, False)])
def test_requires_grad_combinations(x_grad, w_grad):
    x = _x(90, 20, grad=x_grad)
    ws = _weights([20, 32, 4], grad=w_grad)
    out, grads = _compare(x, ws, 1e-12, 1e-12)
    assert out.requires_grad == (x_grad or w_grad)
    assert len(grads) == x_grad + 2 * w_grad


def test_only_some_weights_need_grad():
    x = _x(90, 20, grad=False)
    ws = _weights([20, 32, 32, 4])
    ws[1].requires_grad_(False)
    _compare(x, ws, 1e-12, 1e-12)


@pytest.mark.parametrize(
    "activation,output_activation,in_ones",
    [("relu", "none", 0), ("tanh", "sigmoid", 2), ("leakyrelu", "exponential", 1)],
)
def test_gradcheck_float64(activation, output_activation, in_ones):
    x = _x(7, 5)
    ws = _weights([5 + in_ones, 16, 16, 3])
    fn = lambda x, *ws: ops.mlp(x, ws, activation, output_activation, in_ones)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *ws), eps=1e-6, atol=1e-8)


def test_empty_input_and_leading_dims():
    ws = _weights([6, 16, 2])
    out, grads = _run(ops.mlp, _x(0, 6), ws, {})
    assert out.shape == (0, 2) and grads[0].shape == (0, 6)
    assert all(not g.any() for g in grads[1:])
    x = _x(24, 6, grad=False).view(2, 3, 4, 6)
    torch.testing.assert_close(ops.mlp(x, ws), ops.reference.mlp(x, ws), rtol=1e-12, atol=1e-12)
    assert ops.mlp(x, ws).shape == (2, 3, 4, 2)
    # no input columns, only the ones column, and no rows
    assert ops.mlp(torch.zeros(0, 3, 0, dtype=torch.float64), _weights([1, 16, 2]), in_ones=1).shape == (0, 3, 2)


def test_non_contiguous_inputs():
    x = _x(50, 40)[:, ::2]
    ws = [w.detach().t().contiguous().t().requires_grad_() for w in _weights([20, 32, 3])]
    _compare(x, ws, 1e-12, 1e-12)


def test_backward_is_deterministic_for_a_thread_count():
    x = _x(3000, 32, torch.float32)
    ws = _weights([32, 64, 64, 16], torch.float32)
    first = _run(ops.mlp, x, ws, {})
    again = _run(ops.mlp, x, ws, {})
    for a, b in zip([first[0], *first[1]], [again[0], *again[1]]):
        assert torch.equal(a, b)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _run(ops.mlp, x, ws, {})
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first[0], single[0])  # the forward does not depend on the split
    for a, b in zip(first[1], single[1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_second_derivatives_are_refused():
    x = _x(10, 8)
    ws = _weights([8, 16, 2])
    (g,) = torch.autograd.grad(ops.mlp(x, ws).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives"):
        g.sum().backward()


@pytest.mark.parametrize(
    "call,error,words",
    [
        (lambda f, x, ws: f(x.float(), ws), TypeError, "weights[0] is torch.float64 but x is torch.float32"),
        (lambda f, x, ws: f(x.int(), ws), TypeError, "x must be one of"),
        (lambda f, x, ws: f(x, ws[0]), TypeError, "weights must be a list"),
        (lambda f, x, ws: f(x, []), ValueError, "1 to 9 matrices"),
        (lambda f, x, ws: f(x[:, :5], ws), ValueError, "weights[0] has 6 columns, expected 5"),
        (lambda f, x, ws: f(x, ws, in_ones=1), ValueError, "weights[0] has 6 columns, expected 7"),
        (lambda f, x, ws: f(x, ws, in_ones=-1), ValueError, "in_ones"),
        (lambda f, x, ws: f(x, [ws[0], ws[1].t()]), ValueError, "weights[1] has 2 columns, expected 16"),
        (lambda f, x, ws: f(x, ws, activation="gelu"), ValueError, "activation must be one of"),
        (lambda f, x, ws: f(x, ws, output_activation=None), ValueError, "output_activation must be one of"),
        (lambda f, x, ws: f(x, [ws[0], ws[1][0]]), ValueError, "weights[1] must be (out, in)"),
        (lambda f, x, ws: f(x, _weights([6, 16, 32, 2])), ValueError, "must be (16, 16), got (32, 16)"),
        (lambda f, x, ws: f(x, _weights([6] + [16] * 10 + [2])), ValueError, "1 to 9 matrices"),
        (lambda f, x, ws: f(x.numpy(), ws), TypeError, "x must be a tensor"),
    ],
)
@pytest.mark.parametrize("fn", [ops.mlp, ops.reference.mlp])
def test_bad_inputs_get_one_clear_error(fn, call, error, words):
    x = _x(4, 6, grad=False)
    ws = _weights([6, 16, 2], grad=False)
    with pytest.raises(error) as info:
        call(fn, x, ws)
    assert words in str(info.value)


def test_unsupported_hidden_width_is_refused_by_the_fused_op_only():
    x = _x(4, 6, grad=False)
    ws = _weights([6, 24, 24, 2], grad=False)
    with pytest.raises(ValueError, match="multiple of 16 up to 256, got 24"):
        ops.mlp(x, ws)
    assert ops.reference.mlp(x, ws).shape == (4, 2)


def test_torch_op_refuses_bad_shapes_directly():
    from s3d_fast import _ext

    m = _ext.load()
    x = torch.rand(4, 6)
    ws = [torch.rand(16, 6), torch.rand(2, 16)]
    with pytest.raises(RuntimeError, match="weight 1 has 15 columns, expected 16"):
        m.mlp_forward(x, [ws[0], torch.rand(2, 15)], 0, 1, 0)
    with pytest.raises(RuntimeError, match="bad activation code"):
        m.mlp_forward(x, ws, 0, 9, 0)
    out, hidden = m.mlp_forward(x, ws, 0, 1, 0)
    with pytest.raises(RuntimeError, match="grad_out has shape"):
        m.mlp_backward(torch.ones(4, 3), x, ws, hidden, out, 0, 1, 0, True, True)
    with pytest.raises(RuntimeError, match="hidden has shape"):
        m.mlp_backward(torch.ones(4, 2), x, ws, hidden[:, :5], out, 0, 1, 0, True, True)


def test_supported_networks():
    assert mlp_supported(64, 3, "ReLU", "Sigmoid")
    assert mlp_supported(100, 1, "sine", "none") is False  # an activation the kernel lacks
    assert mlp_supported(48, 2) and not mlp_supported(40, 2) and mlp_supported(40, 1)
    assert not mlp_supported(64, 10) and not mlp_supported(272, 2)


def test_tcnn_networks_run_fused_and_fall_back_where_unsupported():
    fused = tcnn.Network(
        31, 3, {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "Sigmoid", "n_neurons": 64}
    )
    assert fused.mlp.fused
    x = torch.rand(300, 31)
    out = fused(x)
    w = fused.mlp.weights(fused.params.detach())
    w[-1] = w[-1][:3]
    torch.testing.assert_close(out, ops.reference.mlp(x, w, "relu", "sigmoid", in_ones=1), rtol=1e-5, atol=1e-6)
    for config in ({"otype": "CutlassMLP", "n_neurons": 40}, {"otype": "FullyFusedMLP", "activation": "Sine"}):
        net = tcnn.Network(5, 2, config)
        assert not net.mlp.fused
        assert net(torch.rand(7, 5)).shape == (7, 2)
