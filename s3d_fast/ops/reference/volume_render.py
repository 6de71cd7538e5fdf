"""Pure-PyTorch volume rendering over packed samples: the semantics.

Densities use a per-ray exclusive ``cumsum`` of sigma * dt and alphas a per-ray
``cumprod``, both on a dense (n_rays, max_samples) copy; sums per ray use
``index_add_``.
Same signatures as :mod:`s3d_fast.ops.volume_render`.
"""

from __future__ import annotations

import torch

from .._packed import layout, with_prefix_trans


def _ray_of_sample(offsets: torch.Tensor, n_samples: int) -> torch.Tensor:
    counts = offsets[1:] - offsets[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=offsets.device), counts, output_size=n_samples)


def _per_ray_dense(x, offsets):
    """(rays, cols, dense): packed (S,) ``x`` on a (n_rays, max_samples + 1) grid
    whose first column is 0, so that a cumsum or cumprod along dim 1 stays in
    its ray (a NaN or inf in one ray never reaches another)."""
    n = x.numel()
    counts = offsets[1:] - offsets[:-1]
    n_rays = counts.numel()
    width = int(counts.max()) if n_rays and n else 0
    rays = _ray_of_sample(offsets, n)
    cols = torch.arange(n, device=x.device) - offsets[:-1][rays]
    dense = x.new_zeros(n_rays, width + 1).index_put((rays, cols + 1), x)
    return rays, cols, dense


def _exclusive_trans_density(tau, offsets):
    """exp(-exclusive per-ray cumsum of tau), packed (S,)."""
    rays, cols, dense = _per_ray_dense(tau, offsets)
    return torch.exp(-torch.cumsum(dense, dim=1)[rays, cols])


def _exclusive_trans_alpha(alphas, offsets):
    """Exclusive per-ray cumprod of (1 - alpha) on a dense padded copy."""
    rays, cols, dense = _per_ray_dense(alphas, offsets)
    return torch.cumprod(1.0 - dense, dim=1)[rays, cols]


def _weights(kind, inputs, t_starts, t_ends, offsets):
    if kind == "density":
        tau = inputs * (t_ends - t_starts)
        trans = _exclusive_trans_density(tau, offsets)
        alphas = 1.0 - torch.exp(-tau)
    else:
        alphas = inputs
        trans = _exclusive_trans_alpha(alphas, offsets)
    return trans * alphas, trans, alphas


def render_weight_from_density(
    t_starts, t_ends, sigmas, packed_info=None, ray_indices=None, n_rays=None, prefix_trans=None
):
    op = "render_weight_from_density"
    lay = layout(op, sigmas, ray_indices, n_rays, packed_info)
    outs = _weights("density", sigmas.reshape(-1), t_starts.reshape(-1), t_ends.reshape(-1), lay.offsets)
    weights, trans, alphas = (o.view(sigmas.shape) for o in outs)
    weights, trans = with_prefix_trans(op, weights, trans, alphas, prefix_trans, sigmas, "sigmas")
    return weights, trans, alphas


def render_weight_from_alpha(alphas, packed_info=None, ray_indices=None, n_rays=None, prefix_trans=None):
    """(weights, transmittance): two outputs, as nerfacc 0.5.3 returns them."""
    op = "render_weight_from_alpha"
    lay = layout(op, alphas, ray_indices, n_rays, packed_info)
    weights, trans, _ = _weights("alpha", alphas.reshape(-1), None, None, lay.offsets)
    return with_prefix_trans(
        op, weights.view(alphas.shape), trans.view(alphas.shape), alphas, prefix_trans, alphas, "alphas"
    )


def accumulate_along_rays(weights, values=None, ray_indices=None, n_rays=None):
    if ray_indices is None:
        src = weights[..., None] if values is None else weights[..., None] * values
        return src.sum(dim=-2)
    if n_rays is None:
        n_rays = int(ray_indices.max()) + 1 if ray_indices.numel() else 0
    src = weights[:, None] if values is None else weights[:, None] * values
    out = src.new_zeros(int(n_rays), src.shape[-1])
    return out.index_add(0, ray_indices.long(), src)


def composite(
    inputs,
    values=None,
    ray_indices=None,
    n_rays=None,
    t_starts=None,
    t_ends=None,
    kind="density",
    early_stop_eps=0.0,
    render_bkgd=None,
    packed_info=None,
):
    lay = layout("composite", inputs, ray_indices, n_rays, packed_info)
    n = inputs.numel()
    flat = inputs.reshape(-1)
    ts = None if t_starts is None else t_starts.reshape(-1)
    te = None if t_ends is None else t_ends.reshape(-1)
    if kind == "weight":
        weights = flat
    else:
        weights, trans, _ = _weights(kind, flat, ts, te, lay.offsets)
        if early_stop_eps > 0:
            # A ray stops after the sample that takes T below eps: sample i
            # counts iff the transmittance in front of it is still >= eps; the
            # samples after the stop are never read (a NaN there stays out).
            weights = torch.where(trans >= early_stop_eps, weights, torch.zeros_like(weights))
    rays = _ray_of_sample(lay.offsets, n)
    channels = 0 if values is None else values.shape[-1]
    vals = weights.new_zeros(n, 0) if values is None else values.reshape(n, channels)
    colors = accumulate_along_rays(weights, vals, rays, lay.n_rays)
    opacity = accumulate_along_rays(weights, None, rays, lay.n_rays)
    if ts is not None:
        depth = accumulate_along_rays(weights, ((ts + te) / 2)[:, None], rays, lay.n_rays)
    else:
        depth = torch.zeros_like(opacity)
    if render_bkgd is not None:
        colors = colors + render_bkgd * (1.0 - opacity)
    return colors, opacity, depth
