"""The deterministic CUDA backward (torch.use_deterministic_algorithms(True)) on a real GPU:
the tri-plane and hash-grid gradients repeat bit for bit and match the CPU's.

Skipped where no CUDA device is present (CI has none); tests/test_emulated_cuda.py checks
the same launchers on the CPU, under different block and thread orders.
"""

import pytest
import torch

from aids.op_comparison import deterministic_algorithms
from s3d_fast import ops
from s3d_fast.ops import HashGridConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _grads(fn, inputs, dev):
    xs = [x.detach().to(dev).requires_grad_() for x in inputs]
    out = fn(*xs)
    cot = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return [g.cpu() for g in torch.autograd.grad(out, xs, cot.to(out.dtype).to(dev))]


def _repeats_and_matches_cpu(fn, inputs, tol):
    with deterministic_algorithms():
        first, second = _grads(fn, inputs, "cuda"), _grads(fn, inputs, "cuda")
    cpu = _grads(fn, inputs, "cpu")
    for i, (a, b, c) in enumerate(zip(first, second, cpu)):
        assert torch.equal(a, b), f"gradient {i} changed between two deterministic runs"
        torch.testing.assert_close(a, c, rtol=tol, atol=tol)


@pytest.mark.parametrize("plane_reduce", ["sum", "mean", "product", "concat"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triplane_deterministic_backward(plane_reduce, dtype):
    g = torch.Generator().manual_seed(0)
    planes = [torch.randn(1, 3, h, w, 32, generator=g, dtype=dtype) for h, w in ((16, 16), (64, 64))]
    points = (torch.rand(1, 1 << 16, 3, generator=g, dtype=dtype) * 2 - 1) * 1.05

    def fn(pts, a, b):
        return ops.triplane_sample([a, b], pts, plane_reduce=plane_reduce)

    _repeats_and_matches_cpu(fn, (points, *planes), 1e-9 if dtype == torch.float64 else 1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hashgrid_deterministic_backward(dtype):
    config = HashGridConfig(
        n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5
    )
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1 << 17, 3, generator=g, dtype=dtype)
    params = torch.empty(config.layout(3).n_params, dtype=dtype).uniform_(-1, 1, generator=g)
    _repeats_and_matches_cpu(
        lambda a, b: ops.hashgrid_encode(a, b, config), (x, params), 1e-9 if dtype == torch.float64 else 1e-3
    )
