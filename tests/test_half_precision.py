"""float16 and bfloat16 inputs: every fused op computes them in float32 and
returns the input's dtype, within that dtype's rounding of the float64
reference; gradients come back in the input's dtype too."""

from __future__ import annotations

import pytest
import torch

from s3d_fast import ops
from s3d_fast.ops import reference

HALF = [torch.float16, torch.bfloat16]
# One rounding of a value of order 1 to the dtype, plus float32 accumulation.
TOL = {torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def _close(out, ref, dtype):
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref.to(dtype).double(), **TOL[dtype])


@pytest.mark.parametrize("dtype", HALF)
def test_triplane_sample(dtype):
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 8, 6, 5).to(dtype).requires_grad_(True)
    points = (torch.rand(2, 30, 3) * 2 - 1).to(dtype).requires_grad_(True)
    out = ops.triplane_sample(planes, points, plane_reduce="mean")
    ref = reference.triplane_sample(planes.double(), points.double(), plane_reduce="mean")
    _close(out, ref, dtype)
    out.float().square().sum().backward()
    assert planes.grad.dtype == dtype and points.grad.dtype == dtype
    assert torch.isfinite(planes.grad.float()).all() and torch.isfinite(points.grad.float()).all()


@pytest.mark.parametrize("dtype", HALF)
def test_hashgrid_encode(dtype):
    torch.manual_seed(1)
    cfg = ops.HashGridConfig(n_levels=4, log2_hashmap_size=10, base_resolution=4)
    params = (torch.rand(cfg.layout(3).n_params) - 0.5).to(dtype).requires_grad_(True)
    x = torch.rand(64, 3).to(dtype)
    out = ops.hashgrid_encode(x, params, cfg)
    ref = reference.hashgrid_encode(x.double(), params.double(), cfg)
    _close(out, ref, dtype)
    out.float().sum().backward()
    assert params.grad.dtype == dtype and torch.isfinite(params.grad.float()).all()


def _packed(dtype, seed=2):
    g = torch.Generator().manual_seed(seed)
    ray_indices = torch.sort(torch.randint(0, 12, (100,), generator=g)).values
    t0 = torch.rand(100, generator=g).to(dtype)
    sigmas = (torch.rand(100, generator=g) * 3).to(dtype)
    values = torch.rand(100, 4, generator=g).to(dtype)
    return ray_indices, t0, (t0.float() + 0.25).to(dtype), sigmas, values


@pytest.mark.parametrize("dtype", HALF)
def test_render_weights_and_composite(dtype):
    ray_indices, t0, t1, sigmas, values = _packed(dtype)
    sigmas.requires_grad_(True)
    values.requires_grad_(True)
    fused = ops.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices, n_rays=12)
    ref = reference.render_weight_from_density(
        t0.double(), t1.double(), sigmas.double(), ray_indices=ray_indices, n_rays=12
    )
    for a, b in zip(fused, ref):
        _close(a, b, dtype)
    w, trans = ops.render_weight_from_alpha(1 - torch.exp(-sigmas.float()).to(dtype), ray_indices=ray_indices)
    assert w.dtype == trans.dtype == dtype
    colors, opacity, depth = ops.composite(sigmas, values, ray_indices, 12, t0, t1)
    ref = reference.composite(sigmas.double(), values.double(), ray_indices, 12, t0.double(), t1.double())
    for a, b in zip((colors, opacity, depth), ref):
        _close(a, b, dtype)
    acc = ops.accumulate_along_rays(w, values, ray_indices, 12)
    assert acc.dtype == dtype
    (colors.float().sum() + fused[0].float().sum()).backward()
    assert sigmas.grad.dtype == dtype and values.grad.dtype == dtype


@pytest.mark.parametrize("dtype", HALF)
def test_occgrid_march(dtype):
    bits = torch.full((1, 1, 64), 255, dtype=torch.uint8)
    o = torch.tensor([[0.0, 0.0, -2.0]]).repeat(4, 1)
    d = torch.tensor([[0.0, 0.0, 1.0]]).repeat(4, 1)
    near, far = torch.zeros(4), torch.full((4,), 4.0)
    args = ((8, 8, 8), [-1, -1, -1, 1, 1, 1])
    full = ops.occgrid_march(bits, *args, o, d, near, far, 0.125)
    half = ops.occgrid_march(bits, *args, o.to(dtype), d.to(dtype), near.to(dtype), far.to(dtype), 0.125)
    assert torch.equal(full[0], half[0]) and torch.equal(full[3], half[3])
    assert half[1].dtype == dtype and torch.equal(half[1].float(), full[1])  # multiples of 1/8 are exact


def test_half_inputs_must_share_a_dtype():
    ray_indices, t0, t1, sigmas, _ = _packed(torch.float16)
    with pytest.raises(TypeError, match="t_starts is torch.bfloat16 but sigmas is torch.float16"):
        ops.render_weight_from_density(t0.bfloat16(), t1, sigmas, ray_indices=ray_indices)


def test_the_generator_trains_under_bfloat16_autocast():
    """The trainer's autocast (CUDA there: generator_stage) hands bfloat16
    activations to a model whose fused ops take float32 or half; the CPU's autocast
    runs the same forward and backward here."""
    from model_helpers import tiny_config

    from s3d_fast.data.synthtalk import camera
    from s3d_fast.model import S3DNeRF

    cfg = tiny_config().model
    torch.manual_seed(0)
    model = S3DNeRF(cfg)
    R = cfg.input_resolution
    img, mask = torch.rand(1, 3, R, R), torch.zeros(1, R, R, dtype=torch.long)
    mask[:, R // 4 : 3 * R // 4, R // 4 : 3 * R // 4] = 1
    c2w = torch.from_numpy(camera.front_camera()).float().expand(1, 2, 4, 4).contiguous()
    K = torch.from_numpy(camera.intrinsics(R)).float()[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(img, mask, model.audio_tokens(torch.randn(1, 2, 80, 16)), c2w, K)
    loss = out["rgb"].float().mean() + out["opacity"].float().mean()
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
