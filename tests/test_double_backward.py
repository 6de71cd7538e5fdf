"""Second derivatives: every fused op refuses them with a clear error (a node
that raises links each gradient to the op's inputs) rather than returning wrong
ones, as ``once_differentiable`` would (gradgradcheck saw zeros through it);
first derivatives still pass gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from s3d_fast import ops

D = torch.float64


def _triplane():
    torch.manual_seed(0)
    planes = torch.randn(1, 3, 4, 5, 2, dtype=D, requires_grad=True)
    points = (torch.rand(1, 7, 3, dtype=D) * 1.8 - 0.9).requires_grad_(True)
    return (lambda p, x: ops.triplane_sample(p, x, plane_reduce="product")), (planes, points)


def _hashgrid():
    torch.manual_seed(1)
    cfg = ops.HashGridConfig(n_levels=2, log2_hashmap_size=6, base_resolution=3, interpolation="smoothstep")
    params = torch.randn(cfg.layout(3).n_params, dtype=D, requires_grad=True)
    x = torch.rand(6, 3, dtype=D).mul(0.8).add(0.1).requires_grad_(True)
    return (lambda x, p: ops.hashgrid_encode(x, p, cfg)), (x, params)


RAYS = torch.tensor([0, 0, 0, 1, 1, 2])
T0 = torch.linspace(0.1, 1.0, 6, dtype=D)


def _density():
    sigmas = torch.rand(6, dtype=D, requires_grad=True)
    return (lambda s: ops.render_weight_from_density(T0, T0 + 0.2, s, ray_indices=RAYS, n_rays=3)), (sigmas,)


def _alpha():
    alphas = (torch.rand(6, dtype=D) * 0.8).requires_grad_(True)
    return (lambda a: ops.render_weight_from_alpha(a, ray_indices=RAYS, n_rays=3)), (alphas,)


def _composite():
    sigmas = torch.rand(6, dtype=D, requires_grad=True)
    values = torch.rand(6, 3, dtype=D, requires_grad=True)
    return (lambda s, v: ops.composite(s, v, RAYS, 3, T0, T0 + 0.2)), (sigmas, values)


def _accumulate():
    weights = torch.rand(6, dtype=D, requires_grad=True)
    values = torch.rand(6, 2, dtype=D, requires_grad=True)
    return (lambda w, v: ops.accumulate_along_rays(w, v, RAYS, 3)), (weights, values)


OPS = {
    "triplane_sample": _triplane,
    "hashgrid_encode": _hashgrid,
    "render_weight_from_density": _density,
    "render_weight_from_alpha": _alpha,
    "composite": _composite,
    "accumulate_along_rays": _accumulate,
}


@pytest.mark.parametrize("name", OPS)
def test_first_derivatives_pass_gradcheck(name):
    fn, inputs = OPS[name]()
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", OPS)
def test_second_derivatives_are_refused_with_a_clear_error(name):
    fn, inputs = OPS[name]()
    with pytest.raises(RuntimeError, match="second derivatives are not supported"):
        gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", OPS)
def test_a_graph_of_the_gradient_is_refused_only_when_differentiated(name):
    """create_graph=True alone works (a gradient penalty built on it fails when
    it is differentiated, not silently)."""
    fn, inputs = OPS[name]()
    out = fn(*inputs)
    out = out if isinstance(out, torch.Tensor) else out[0]
    grads = torch.autograd.grad(out.sum(), inputs, create_graph=True, allow_unused=True)
    penalty = sum(g.square().sum() for g in grads if g is not None)
    with pytest.raises(RuntimeError, match="second derivatives are not supported"):
        penalty.backward()
