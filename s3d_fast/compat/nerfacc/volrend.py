"""nerfacc.volrend on s3d-fast's fused kernels.

Weights, transmittance and accumulation run on ``s3d_fast.ops`` (one worker per
ray, O(1)-memory backward), packed (sorted ``ray_indices`` or ``packed_info``) or
batched; batched inputs of any leading shape are folded to (rays, samples) first.
``rendering`` composites colours, opacity and depth in one fused pass.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from ... import ops


def _fold(x: Optional[Tensor]) -> Optional[Tensor]:
    """Batched (..., n_samples) as (rays, n_samples) for the fused ops."""
    return None if x is None else x.reshape(-1, x.shape[-1])


def _weights_from_density(t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans):
    if packed_info is None and ray_indices is None:
        shape = sigmas.shape
        outs = ops.render_weight_from_density(
            _fold(t_starts), _fold(t_ends), _fold(sigmas), prefix_trans=_fold(prefix_trans)
        )
        return tuple(o.reshape(shape) for o in outs)
    return ops.render_weight_from_density(t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans)


def _weights_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans):
    if packed_info is None and ray_indices is None:
        shape = alphas.shape
        outs = ops.render_weight_from_alpha(_fold(alphas), prefix_trans=_fold(prefix_trans))
        return tuple(o.reshape(shape) for o in outs)
    return ops.render_weight_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans)


def render_weight_from_density(
    t_starts: Tensor,
    t_ends: Tensor,
    sigmas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    prefix_trans: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(weights, transmittance, alphas): alpha = 1 - exp(-sigma dt), T = exp(-sum of the
    sigma dt before), w = T alpha. Differentiable to ``sigmas``."""
    return _weights_from_density(t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans)


def render_weight_from_alpha(
    alphas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    prefix_trans: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """(weights, transmittance): T = product of (1 - alpha) before, w = T alpha."""
    return _weights_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans)


def render_transmittance_from_density(
    t_starts: Tensor,
    t_ends: Tensor,
    sigmas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    prefix_trans: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor]:
    """(transmittance, alphas) from densities."""
    _, trans, alphas = _weights_from_density(t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans)
    return trans, alphas


def render_transmittance_from_alpha(
    alphas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    prefix_trans: Optional[Tensor] = None,
) -> Tensor:
    """Transmittance from alphas."""
    return _weights_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans)[1]


@torch.no_grad()
def render_visibility_from_alpha(
    alphas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    early_stop_eps: float = 1e-4,
    alpha_thre: float = 0.0,
    prefix_trans: Optional[Tensor] = None,
) -> Tensor:
    """Samples still visible: transmittance >= early_stop_eps and (if alpha_thre > 0)
    alpha >= alpha_thre. Bool, shaped like ``alphas``."""
    trans = render_transmittance_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans)
    visible = trans >= early_stop_eps
    return visible & (alphas >= alpha_thre) if alpha_thre > 0 else visible


@torch.no_grad()
def render_visibility_from_density(
    t_starts: Tensor,
    t_ends: Tensor,
    sigmas: Tensor,
    packed_info: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    early_stop_eps: float = 1e-4,
    alpha_thre: float = 0.0,
    prefix_trans: Optional[Tensor] = None,
) -> Tensor:
    """As :func:`render_visibility_from_alpha`, from densities."""
    trans, alphas = render_transmittance_from_density(
        t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans
    )
    visible = trans >= early_stop_eps
    return visible & (alphas >= alpha_thre) if alpha_thre > 0 else visible


def accumulate_along_rays(
    weights: Tensor,
    values: Optional[Tensor] = None,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
) -> Tensor:
    """Per-ray sum of ``weights * values`` ((n_rays, D); (n_rays, 1) without values).
    Packed with ``ray_indices`` (sorted takes the fused kernel), or batched
    (..., n_samples) with values (..., n_samples, D)."""
    if values is not None and (values.dim() != weights.dim() + 1 or values.shape[:-1] != weights.shape):
        raise ValueError(
            f"accumulate_along_rays: values must be weights' shape {tuple(weights.shape)} plus a channel "
            f"dimension, got {tuple(values.shape)}"
        )
    if ray_indices is None and weights.dim() != 2:
        src = weights[..., None] if values is None else weights[..., None] * values
        return src.sum(dim=-2)
    return ops.accumulate_along_rays(weights, values, ray_indices, n_rays)


def _composite(weights, rgbs, t_starts, t_ends, ray_indices, n_rays):
    """(colors, opacities, accumulated depths) in one fused pass over the weights."""
    if ray_indices is None:
        lead = weights.shape[:-1]
        colors, opacities, depths = ops.composite(
            _fold(weights), rgbs.reshape(-1, *rgbs.shape[-2:]), None, None, _fold(t_starts), _fold(t_ends), "weight"
        )
        return colors.reshape(*lead, -1), opacities.reshape(*lead, 1), depths.reshape(*lead, 1)
    return ops.composite(weights, rgbs, ray_indices, n_rays, t_starts, t_ends, kind="weight")


def rendering(
    t_starts: Tensor,
    t_ends: Tensor,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
    rgb_sigma_fn: Optional[Callable] = None,
    rgb_alpha_fn: Optional[Callable] = None,
    render_bkgd: Optional[Tensor] = None,
    expected_depths: bool = True,
) -> tuple[Tensor, Tensor, Tensor, dict]:
    """Colours (n_rays, C), opacities (n_rays, 1), depths (n_rays, 1) and the extras
    (weights, trans, alphas, sigmas or not, rgbs) of the samples, as nerfacc's.

    ``rgb_sigma_fn(t_starts, t_ends, ray_indices)`` returns (rgbs (..., C), sigmas
    (...)); ``rgb_alpha_fn`` returns alphas instead of densities. Depths are the
    expected depths (divided by the opacity) unless ``expected_depths=False``.
    Not differentiable to ``t_starts`` / ``t_ends``.
    """
    if ray_indices is not None and not (t_starts.shape == t_ends.shape == ray_indices.shape):
        raise ValueError("rendering: t_starts, t_ends and ray_indices must have the same shape (N,)")
    if rgb_sigma_fn is None and rgb_alpha_fn is None:
        raise ValueError("rendering: give rgb_sigma_fn or rgb_alpha_fn")
    fn = rgb_sigma_fn if rgb_sigma_fn is not None else rgb_alpha_fn
    kind = "sigmas" if rgb_sigma_fn is not None else "alphas"
    if t_starts.shape[0] != 0:
        rgbs, field = fn(t_starts, t_ends, ray_indices)
    else:
        rgbs = t_starts.new_empty((*t_starts.shape, 3))
        field = t_starts.new_empty(t_starts.shape)
    if field.shape != t_starts.shape:
        raise ValueError(
            f"rendering: {kind} must have the samples' shape {tuple(t_starts.shape)}, got {tuple(field.shape)}"
        )
    if rgbs.shape[:-1] != t_starts.shape:
        raise ValueError(f"rendering: rgbs must be {tuple(t_starts.shape)} + (C,), got {tuple(rgbs.shape)}")
    if rgb_sigma_fn is not None:
        weights, trans, alphas = render_weight_from_density(
            t_starts, t_ends, field, ray_indices=ray_indices, n_rays=n_rays
        )
        extras = {"weights": weights, "alphas": alphas, "trans": trans, "sigmas": field, "rgbs": rgbs}
    else:
        weights, trans = render_weight_from_alpha(field, ray_indices=ray_indices, n_rays=n_rays)
        extras = {"weights": weights, "trans": trans, "rgbs": rgbs, "alphas": field}
    colors, opacities, depths = _composite(weights, rgbs, t_starts, t_ends, ray_indices, n_rays)
    if expected_depths:
        depths = depths / opacities.clamp_min(torch.finfo(rgbs.dtype).eps)
    if render_bkgd is not None:
        colors = colors + render_bkgd * (1.0 - opacities)
    return colors, opacities, depths, extras
