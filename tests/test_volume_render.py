"""Fused volume rendering against the pure-PyTorch reference and nerfacc."""

import pytest
import torch

from s3d_fast import ops
from s3d_fast.ops import reference


def packed_samples(n_rays=7, max_per_ray=9, dtype=torch.float64, seed=0, empty_rays=True):
    """Random packed samples sorted by ray; some rays get none."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0 if empty_rays else 1, max_per_ray + 1, (n_rays,), generator=g)
    ray_indices = torch.repeat_interleave(torch.arange(n_rays), counts)
    n = int(counts.sum())
    steps = torch.rand(n, generator=g, dtype=dtype) * 0.2 + 0.01
    t_ends = torch.zeros(n, dtype=dtype)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    for r in range(n_rays):  # test data only
        a, b = offsets[r], offsets[r + 1]
        t_ends[a:b] = steps[a:b].cumsum(0) + 0.5
    t_starts = t_ends - steps
    sigmas = torch.rand(n, generator=g, dtype=dtype) * 8
    return ray_indices, t_starts, t_ends, sigmas


def test_render_weight_from_density_matches_reference_and_gradients():
    ray_indices, t0, t1, sigmas = packed_samples()
    sigmas.requires_grad_(True)
    fused = ops.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices, n_rays=7)
    ref = reference.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices, n_rays=7)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    gs = [torch.randn_like(sigmas) for _ in range(3)]
    gf = torch.autograd.grad(fused, sigmas, gs)[0]
    gr = torch.autograd.grad(ref, sigmas, gs)[0]
    torch.testing.assert_close(gf, gr, rtol=1e-10, atol=1e-10)


def test_render_weight_from_alpha_matches_reference_and_gradients():
    ray_indices, _, _, sigmas = packed_samples(seed=1)
    alphas = (torch.rand_like(sigmas) * 0.9).requires_grad_(True)
    fused = ops.render_weight_from_alpha(alphas, ray_indices=ray_indices, n_rays=7)
    ref = reference.render_weight_from_alpha(alphas, ray_indices=ray_indices, n_rays=7)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert len(fused) == 2  # nerfacc returns (weights, transmittance) here
    gs = [torch.randn_like(alphas) for _ in range(2)]
    torch.testing.assert_close(
        torch.autograd.grad(fused, alphas, gs)[0], torch.autograd.grad(ref, alphas, gs)[0], rtol=1e-10, atol=1e-10
    )


def test_render_weight_gradcheck():
    ray_indices, t0, t1, sigmas = packed_samples(n_rays=4, max_per_ray=5, seed=2)
    sigmas.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda s: ops.render_weight_from_density(t0, t1, s, ray_indices=ray_indices, n_rays=4), (sigmas,)
    )
    alphas = (torch.rand_like(sigmas) * 0.9).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a: ops.render_weight_from_alpha(a, ray_indices=ray_indices, n_rays=4), (alphas,)
    )


@pytest.mark.parametrize("kind", ["density", "alpha", "weight"])
@pytest.mark.parametrize("early_stop_eps", [0.0, 0.05])
@pytest.mark.parametrize("channels", [5, 32])  # run-time width; a compile-time one (3/16/32/64)
def test_composite_matches_reference(kind, early_stop_eps, channels):
    ray_indices, t0, t1, sigmas = packed_samples(n_rays=11, max_per_ray=12, seed=3)
    inputs = {"density": sigmas, "alpha": torch.rand_like(sigmas) * 0.9, "weight": torch.rand_like(sigmas) * 0.2}[kind]
    inputs = inputs.clone().requires_grad_(True)
    values = torch.randn(inputs.numel(), channels, dtype=torch.float64, requires_grad=True)
    kw = dict(ray_indices=ray_indices, n_rays=11, t_starts=t0, t_ends=t1, kind=kind, early_stop_eps=early_stop_eps)
    fused = ops.composite(inputs, values, **kw)
    ref = reference.composite(inputs, values, **kw)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    gs = [torch.randn_like(o) for o in ref]
    for a, b in zip(torch.autograd.grad(fused, [inputs, values], gs), torch.autograd.grad(ref, [inputs, values], gs)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["density", "alpha"])
def test_composite_gradcheck(kind):
    ray_indices, t0, t1, sigmas = packed_samples(n_rays=4, max_per_ray=5, seed=4)
    inputs = (sigmas if kind == "density" else torch.rand_like(sigmas) * 0.9).clone().requires_grad_(True)
    values = torch.randn(inputs.numel(), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, v: ops.composite(x, v, ray_indices, 4, t_starts=t0, t_ends=t1, kind=kind), (inputs, values)
    )


def test_composite_matches_render_weight_plus_accumulate_and_background():
    ray_indices, t0, t1, sigmas = packed_samples(n_rays=9, seed=5, dtype=torch.float32)
    values = torch.rand(sigmas.numel(), 32)
    w, _, _ = ops.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices, n_rays=9)
    bkgd = torch.rand(32)
    colors, opacity, depth = ops.composite(sigmas, values, ray_indices, 9, t0, t1, render_bkgd=bkgd)
    acc = ops.accumulate_along_rays(w, values, ray_indices, 9)
    torch.testing.assert_close(colors, acc + bkgd * (1 - opacity), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(opacity, ops.accumulate_along_rays(w, None, ray_indices, 9), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(depth, ops.accumulate_along_rays(w, ((t0 + t1) / 2)[:, None], ray_indices, 9))


def test_accumulate_along_rays_batched_packed_and_unsorted():
    w = torch.rand(6, 4, dtype=torch.float64, requires_grad=True)
    v = torch.rand(6, 4, 3, dtype=torch.float64, requires_grad=True)
    out = ops.accumulate_along_rays(w, v)
    torch.testing.assert_close(out, (w[..., None] * v).sum(1))
    assert torch.autograd.gradcheck(ops.accumulate_along_rays, (w, v))
    ray_indices = torch.tensor([2, 0, 1, 0])
    wp, vp = w[0].detach(), v[0].detach()
    out = ops.accumulate_along_rays(wp, vp, ray_indices, 4)
    torch.testing.assert_close(out, reference.accumulate_along_rays(wp, vp, ray_indices, 4))


def test_batched_inputs_match_packed():
    sig = torch.rand(5, 6, dtype=torch.float64) * 4
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    t0, t1 = t[:-1].expand(5, 6).contiguous(), t[1:].expand(5, 6).contiguous()
    batched = ops.render_weight_from_density(t0, t1, sig)
    rays = torch.arange(5).repeat_interleave(6)
    packed = ops.render_weight_from_density(t0.reshape(-1), t1.reshape(-1), sig.reshape(-1), ray_indices=rays, n_rays=5)
    for a, b in zip(batched, packed):
        torch.testing.assert_close(a.reshape(-1), b)


def test_matches_nerfacc_batched_forward_and_gradients():
    nerfacc = pytest.importorskip("nerfacc", reason="nerfacc==0.5.3 is a test dependency (pip install -e .[test])")
    g = torch.Generator().manual_seed(6)
    sig = (torch.rand(16, 24, generator=g) * 10).requires_grad_(True)
    t = torch.sort(torch.rand(16, 25, generator=g) * 3, dim=1).values
    t0, t1 = t[:, :-1].contiguous(), t[:, 1:].contiguous()
    ours = ops.render_weight_from_density(t0, t1, sig)
    theirs = nerfacc.render_weight_from_density(t0, t1, sig)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    gs = [torch.randn_like(sig) for _ in range(3)]
    torch.testing.assert_close(
        torch.autograd.grad(ours, sig, gs)[0], torch.autograd.grad(theirs, sig, gs)[0], rtol=1e-4, atol=1e-5
    )
    alphas = (torch.rand(16, 24, generator=g) * 0.95).requires_grad_(True)
    ours = ops.render_weight_from_alpha(alphas)
    theirs = nerfacc.render_weight_from_alpha(alphas)
    assert len(ours) == len(theirs) == 2
    gs = gs[:2]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        torch.autograd.grad(ours, alphas, gs)[0], torch.autograd.grad(theirs, alphas, gs)[0], rtol=1e-4, atol=1e-5
    )
    values = torch.rand(16, 24, 32)
    w = ours[0].detach()
    torch.testing.assert_close(ops.accumulate_along_rays(w, values), nerfacc.accumulate_along_rays(w, values))


def test_empty_inputs():
    e = torch.zeros(0)
    ri = torch.zeros(0, dtype=torch.long)
    w, t, a = ops.render_weight_from_density(e, e, e, ray_indices=ri, n_rays=3)
    assert w.shape == (0,)
    colors, opacity, depth = ops.composite(e, torch.zeros(0, 32), ri, 3, e, e)
    assert colors.shape == (3, 32) and bool((colors == 0).all()) and bool((opacity == 0).all())
    colors, opacity, depth = ops.composite(e, None, ri, 0, e, e)
    assert colors.shape == (0, 0) and opacity.shape == (0, 1)


def test_non_contiguous_inputs():
    ray_indices, t0, t1, sigmas = packed_samples(seed=7)
    values = torch.randn(5, sigmas.numel(), dtype=torch.float64).t()  # (S, 5), non-contiguous
    fused = ops.composite(sigmas, values, ray_indices, 7, t0, t1)
    ref = reference.composite(sigmas, values, ray_indices, 7, t0, t1)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b)


def test_bad_inputs_raise_clear_errors():
    ray_indices, t0, t1, sigmas = packed_samples(seed=8, empty_rays=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.render_weight_from_density(t0.int(), t1.int(), sigmas.int(), ray_indices=ray_indices)
    with pytest.raises(ValueError, match="sorted"):
        ops.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices.flip(0))
    with pytest.raises(ValueError, match="n_rays"):
        ops.render_weight_from_density(t0, t1, sigmas, ray_indices=ray_indices, n_rays=2)
    with pytest.raises(ValueError, match="t_starts"):
        ops.render_weight_from_density(t0[:-1], t1, sigmas, ray_indices=ray_indices)
    with pytest.raises(ValueError, match="values"):
        ops.composite(sigmas, torch.zeros(3, 2, dtype=sigmas.dtype), ray_indices, None, t0, t1)
    with pytest.raises(ValueError, match="kind"):
        ops.composite(sigmas, None, ray_indices, None, t0, t1, kind="rgb")
    with pytest.raises(ValueError, match="density"):
        ops.composite(sigmas, None, ray_indices)
    with pytest.raises(ValueError, match="batched"):
        ops.render_weight_from_alpha(sigmas)


def test_deterministic_across_runs():
    ray_indices, t0, t1, sigmas = packed_samples(n_rays=600, max_per_ray=20, seed=9, dtype=torch.float32)
    sigmas.requires_grad_(True)
    values = torch.randn(sigmas.numel(), 8, requires_grad=True)
    outs = []
    for _ in range(2):
        c, o, d = ops.composite(sigmas, values, ray_indices, 600, t0, t1)
        outs.append((c, o, d, *torch.autograd.grad((c.sum() + o.sum() + d.sum()), [sigmas, values])))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_composite_batched_matches_packed():
    sig = torch.rand(4, 6, dtype=torch.float64) * 5
    vals = torch.rand(4, 6, 3, dtype=torch.float64)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    t0, t1 = t[:-1].expand(4, 6), t[1:].expand(4, 6)  # expanded, non-contiguous
    batched = ops.composite(sig, vals, t_starts=t0, t_ends=t1)
    rays = torch.arange(4).repeat_interleave(6)
    packed = ops.composite(sig.reshape(-1), vals.reshape(-1, 3), rays, 4, t0.reshape(-1), t1.reshape(-1))
    for a, b in zip(batched, packed):
        torch.testing.assert_close(a, b)


def test_prefix_trans_matches_nerfacc_and_reference():
    # nerfacc scales the transmittance by prefix_trans and the weights follow.
    # Its in-place `trans *= prefix_trans` breaks its own backward, so the
    # gradients are checked against the reference.
    nerfacc = pytest.importorskip("nerfacc", reason="nerfacc==0.5.3 is a test dependency (pip install -e .[test])")
    g = torch.Generator().manual_seed(7)
    sig = (torch.rand(6, 9, generator=g) * 5).requires_grad_(True)
    t = torch.sort(torch.rand(6, 10, generator=g) * 2, dim=1).values
    t0, t1 = t[:, :-1].contiguous(), t[:, 1:].contiguous()
    prefix = (torch.rand(6, 9, generator=g) * 0.5 + 0.5).requires_grad_(True)
    ours = ops.render_weight_from_density(t0, t1, sig, prefix_trans=prefix)
    with torch.no_grad():
        theirs = nerfacc.render_weight_from_density(t0, t1, sig, prefix_trans=prefix)
    ref = reference.render_weight_from_density(t0, t1, sig, prefix_trans=prefix)
    for a, b, c in zip(ours, theirs, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
    gs = [torch.randn_like(sig) for _ in range(3)]
    for a, b in zip(torch.autograd.grad(ours, [sig, prefix], gs), torch.autograd.grad(ref, [sig, prefix], gs)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

    alphas = torch.rand(6, 9, generator=g) * 0.9
    ours = ops.render_weight_from_alpha(alphas, prefix_trans=prefix.detach())
    theirs = nerfacc.render_weight_from_alpha(alphas, prefix_trans=prefix.detach())
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="prefix_trans"):
        ops.render_weight_from_alpha(alphas, prefix_trans=prefix.detach()[:, :3])


def test_composite_float32_extreme_densities_match_float64():
    # The CPU path computes float32 alphas with its own vectorised exp: check
    # it at 0, tiny, ordinary and huge tau (past exp's underflow).
    sig = torch.tensor([0.0, 1e-8, 0.3, 5.0, 90.0, 1e4, 1e30, 0.05, 0.7, 2.0] * 7)
    n = sig.numel()
    ray_indices = torch.arange(n) // 10
    t0 = torch.arange(n, dtype=torch.float32) % 10 * 0.5
    t1 = t0 + 0.5 + torch.linspace(0, 1, n)
    values = torch.randn(n, 32)
    fused = ops.composite(sig, values, ray_indices, 7, t0, t1)
    # Against the fused float64 path (libm exp, checked against the reference
    # and nerfacc above): the reference's exclusive cumsum of tau cancels
    # catastrophically after a tau of 1e30 and is not a usable oracle here.
    ref = ops.composite(sig.double(), values.double(), ray_indices, 7, t0.double(), t1.double())
    for a, b in zip(fused, ref):
        assert bool(torch.isfinite(a).all())
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("eps", [0.0, 1e-4])
def test_composite_gradient_through_an_alpha_of_exactly_one(eps):
    """Behind an alpha of 1 the weights are 0, but (without an early stop there) they still
    depend on that alpha: its gradient must count them (found by tests/test_fuzz_ops.py)."""
    g = torch.Generator().manual_seed(3)
    a = torch.tensor([[0.3, 1.0, 0.4, 0.5, 1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    v = torch.rand(1, 6, 3, dtype=torch.float64, generator=g, requires_grad=True)
    ts = torch.arange(6, dtype=torch.float64)[None]
    fused = ops.composite(a, v, t_starts=ts, t_ends=ts + 1, kind="alpha", early_stop_eps=eps)
    ref = reference.composite(a, v, t_starts=ts, t_ends=ts + 1, kind="alpha", early_stop_eps=eps)
    weights = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in fused]
    got = torch.autograd.grad(sum((x * w).sum() for x, w in zip(fused, weights)), (a, v))
    want = torch.autograd.grad(sum((x * w).sum() for x, w in zip(ref, weights)), (a, v))
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    if eps == 0:
        assert got[0][0, 1].abs() > 1e-3  # the alpha of 1 carries the samples behind it
