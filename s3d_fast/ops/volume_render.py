"""Fused volume rendering over packed samples (nerfacc-compatible).

``render_weight_from_density`` / ``render_weight_from_alpha`` /
``accumulate_along_rays`` take nerfacc 0.5's arguments and return its values;
``composite`` turns per-sample densities (or alphas, or weights) and C-channel
values into per-ray values, opacity and depth in a single pass. All walk each
ray front to back in one worker; backward re-walks the ray from the saved
outputs, so it needs O(1) extra memory per ray.

Packed samples must be sorted by ray (``OccupancyGrid.sampling`` returns them
so). No gradient flows to ``t_starts`` / ``t_ends`` (as in nerfacc's CUDA path).
Second derivatives are refused with an error (the backward is first-order only).
float16 / bfloat16 inputs are computed in float32 and the outputs cast back.
The offsets handed to the kernels are built or checked here, so the kernels
are called with ``check=False`` (their own check costs a GPU sync).
"""

from __future__ import annotations

import torch

from .. import _ext
from ._first_order import first_order
from ._half import is_half, narrow, widen
from ._packed import check_float, check_like, layout, with_prefix_trans
from .reference.volume_render import accumulate_along_rays as reference_accumulate_along_rays

INPUT_KINDS = ("density", "alpha", "weight")


def _flat(x):
    return None if x is None else x.reshape(-1).contiguous()


class _RenderWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, offsets, inputs, t_starts, t_ends):
        weights, trans, alphas = _ext.load().render_weight_forward(offsets, inputs, t_starts, t_ends, kind, False)
        ctx.kind = kind
        ctx.save_for_backward(offsets, t_starts, t_ends, trans, alphas)
        return weights, trans, alphas

    @staticmethod
    def backward(ctx, grad_weights, grad_trans, grad_alphas):
        if not ctx.needs_input_grad[2]:
            return None, None, None, None, None
        offsets, t_starts, t_ends, trans, alphas = ctx.saved_tensors
        with torch.no_grad():
            grad_in = _ext.load().render_weight_backward(
                offsets, t_starts, t_ends, trans, alphas, grad_weights, grad_trans, grad_alphas, ctx.kind, False
            )
        (grad_in,) = first_order("render_weight", (grad_in,), (grad_weights, grad_trans, grad_alphas, alphas))
        return None, None, grad_in, None, None


def _render_weight(op, kind, inputs, inputs_name, t_starts, t_ends, ray_indices, n_rays, packed_info, prefix_trans):
    lay = layout(op, inputs, ray_indices, n_rays, packed_info)
    shape = inputs.shape
    flat_t = (None, None)
    if t_starts is not None:
        check_like("t_starts", t_starts, inputs, "sigmas", op)
        check_like("t_ends", t_ends, inputs, "sigmas", op)
        flat_t = (_flat(t_starts), _flat(t_ends))
    weights, trans, alphas = (o.view(shape) for o in _RenderWeight.apply(kind, lay.offsets, _flat(inputs), *flat_t))
    weights, trans = with_prefix_trans(op, weights, trans, alphas, prefix_trans, inputs, inputs_name)
    return weights, trans, alphas


def render_weight_from_density(
    t_starts, t_ends, sigmas, packed_info=None, ray_indices=None, n_rays=None, prefix_trans=None
):
    """Weights, transmittance and alphas from densities, as nerfacc's.

    Args:
        t_starts, t_ends, sigmas: (S,) packed samples with ``ray_indices`` (or
            ``packed_info``), or (n_rays, n_samples) batched.
        ray_indices: (S,) int, sorted, the ray of each sample.
        n_rays: number of rays (default: max(ray_indices) + 1).
        prefix_trans: optional, like ``sigmas``: transmittance inherited from
            samples before these; it multiplies T (and so the weights).

    Returns:
        (weights, transmittance, alphas), each shaped like ``sigmas``, with
        alpha = 1 - exp(-sigma (t_end - t_start)), T = exclusive product of
        (1 - alpha) along the ray, weight = T alpha. Gradients flow to sigmas.
    """
    op = "render_weight_from_density"
    if is_half(sigmas):
        dtype = sigmas.dtype
        names = ("sigmas", "t_starts", "t_ends", "prefix_trans")
        sigmas, t_starts, t_ends, prefix_trans = widen(op, names, (sigmas, t_starts, t_ends, prefix_trans))
        outs = render_weight_from_density(t_starts, t_ends, sigmas, packed_info, ray_indices, n_rays, prefix_trans)
        return narrow(outs, dtype)
    check_float("sigmas", sigmas, op)
    if t_starts is None or t_ends is None:
        raise ValueError(f"{op}: t_starts and t_ends are required")
    return _render_weight(op, 0, sigmas, "sigmas", t_starts, t_ends, ray_indices, n_rays, packed_info, prefix_trans)


def render_weight_from_alpha(alphas, packed_info=None, ray_indices=None, n_rays=None, prefix_trans=None):
    """Weights and transmittance from alphas, as nerfacc's.

    Returns two tensors, ``(weights, transmittance)``, not three: that is what
    nerfacc 0.5.3's ``render_weight_from_alpha`` returns, and keeping its
    return keeps this a drop-in replacement (``w, t = render_weight_from_alpha(...)``
    works unchanged). Issue 4's text names ``(weights, transmittance, alphas)``
    for both functions; here the alphas are the caller's own input, so a third
    output would only repeat it. :func:`render_weight_from_density` returns
    three, also as nerfacc does. Arguments, layouts and ``prefix_trans`` as in
    :func:`render_weight_from_density`.
    """
    op = "render_weight_from_alpha"
    if is_half(alphas):
        dtype = alphas.dtype
        alphas, prefix_trans = widen(op, ("alphas", "prefix_trans"), (alphas, prefix_trans))
        return narrow(render_weight_from_alpha(alphas, packed_info, ray_indices, n_rays, prefix_trans), dtype)
    check_float("alphas", alphas, op)
    weights, trans, _ = _render_weight(
        op, 1, alphas, "alphas", None, None, ray_indices, n_rays, packed_info, prefix_trans
    )
    return weights, trans


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind, eps, offsets, inputs, values, t_starts, t_ends):
        colors, opacity, depth = _ext.load().composite_forward(
            offsets, inputs, values, t_starts, t_ends, kind, eps, False
        )
        ctx.kind, ctx.eps = kind, eps
        ctx.save_for_backward(offsets, inputs, values, t_starts, t_ends, colors, opacity, depth)
        return colors, opacity, depth

    @staticmethod
    def backward(ctx, grad_colors, grad_opacity, grad_depth):
        need_in, need_values = ctx.needs_input_grad[3], ctx.needs_input_grad[4]
        if not (need_in or need_values):
            return (None,) * 7
        offsets, inputs, values, t_starts, t_ends, colors, opacity, depth = ctx.saved_tensors
        with torch.no_grad():
            grad_in, grad_values = _ext.load().composite_backward(
                offsets,
                inputs,
                values,
                t_starts,
                t_ends,
                ctx.kind,
                ctx.eps,
                colors,
                opacity,
                depth,
                grad_colors,
                grad_opacity,
                grad_depth,
                need_in,
                need_values,
                False,
            )
        if need_values and values.shape[1] == 0:
            grad_values = torch.zeros_like(values)
        grads = (grad_in if need_in else None, grad_values if need_values else None)
        grads = first_order("composite", grads, (grad_colors, grad_opacity, grad_depth, inputs, values))
        return (None, None, None, *grads, None, None)


def composite(
    inputs,
    values=None,
    ray_indices=None,
    n_rays=None,
    t_starts=None,
    t_ends=None,
    kind: str = "density",
    early_stop_eps: float = 0.0,
    render_bkgd=None,
    packed_info=None,
):
    """Per-ray values, opacity and depth from packed samples, in one pass.

    Args:
        inputs: (S,) per-sample densities, alphas or weights (``kind``), packed
            and sorted by ray with ``ray_indices`` (or ``packed_info``); or
            (n_rays, n_samples) batched.
        values: (S, C) per-sample values (any C: RGB, 32-d features), or
            (n_rays, n_samples, C) batched; None renders opacity and depth only.
        t_starts, t_ends: sample intervals, like ``inputs``; required for
            densities, optional otherwise (depth is then 0).
        kind: ``density`` | ``alpha`` | ``weight``.
        early_stop_eps: a ray stops after the sample that takes its
            transmittance below this (0 composites every sample).
        render_bkgd: optional (C,) or (n_rays, C) background, added as
            ``bkgd * (1 - opacity)``.

    Returns:
        (values (n_rays, C), opacity (n_rays, 1), depth (n_rays, 1)); depth is
        the weighted sum of interval midpoints (not divided by opacity), as in
        nerfacc's ``rendering``. Gradients flow to ``inputs`` and ``values``.
    """
    op = "composite"
    if is_half(inputs):
        dtype = inputs.dtype
        names = ("inputs", "values", "t_starts", "t_ends", "render_bkgd")
        widened = widen(op, names, (inputs, values, t_starts, t_ends, render_bkgd))
        inputs, values, t_starts, t_ends, render_bkgd = widened
        outs = composite(
            inputs, values, ray_indices, n_rays, t_starts, t_ends, kind, early_stop_eps, render_bkgd, packed_info
        )
        return narrow(outs, dtype)
    check_float("inputs", inputs, op)
    if kind not in INPUT_KINDS:
        raise ValueError(f"{op}: kind must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    lay = layout(op, inputs, ray_indices, n_rays, packed_info)
    n_samples = inputs.numel()
    if values is None:
        values = inputs.new_zeros(n_samples, 0)
    else:
        check_float("values", values, op)
        if values.dim() != inputs.dim() + 1 or values.shape[:-1] != inputs.shape:
            raise ValueError(
                f"{op}: values must be inputs' shape plus a channel dimension, got {tuple(values.shape)} "
                f"for inputs {tuple(inputs.shape)}"
            )
        check_like("values", values, inputs, "inputs", op, shape=values.shape)
    if (t_starts is None) != (t_ends is None):
        raise ValueError(f"{op}: give both t_starts and t_ends or neither")
    if kind == "density" and t_starts is None:
        raise ValueError(f"{op}: kind='density' needs t_starts and t_ends")
    flat_t = (None, None)
    if t_starts is not None:
        check_like("t_starts", t_starts, inputs, "inputs", op)
        check_like("t_ends", t_ends, inputs, "inputs", op)
        flat_t = (_flat(t_starts), _flat(t_ends))
    early_stop_eps = float(early_stop_eps)
    if early_stop_eps < 0:
        raise ValueError(f"{op}: early_stop_eps must be >= 0, got {early_stop_eps}")
    channels = values.shape[-1]
    colors, opacity, depth = _Composite.apply(
        INPUT_KINDS.index(kind),
        early_stop_eps,
        lay.offsets,
        _flat(inputs),
        values.reshape(n_samples, channels).contiguous(),
        *flat_t,
    )
    opacity, depth = opacity.unsqueeze(-1), depth.unsqueeze(-1)
    if render_bkgd is not None:
        colors = colors + render_bkgd * (1.0 - opacity)
    return colors, opacity, depth


def accumulate_along_rays(weights, values=None, ray_indices=None, n_rays=None):
    """Sum of ``weights * values`` per ray, as nerfacc's.

    Args:
        weights: (S,) packed with ``ray_indices``, or (n_rays, n_samples).
        values: (S, D) / (n_rays, n_samples, D), or None to sum the weights.
    Returns:
        (n_rays, D), or (n_rays, 1) without values.

    Sorted ``ray_indices`` take the fused per-ray kernel; unsorted ones (which
    nerfacc also accepts) are summed with ``index_add_``.
    """
    op = "accumulate_along_rays"
    if is_half(weights):
        dtype = weights.dtype
        weights, values = widen(op, ("weights", "values"), (weights, values))
        return narrow(accumulate_along_rays(weights, values, ray_indices, n_rays), dtype)
    check_float("weights", weights, op)
    if ray_indices is not None and weights.dim() == 1 and ray_indices.numel() > 1:
        if isinstance(ray_indices, torch.Tensor) and not bool((ray_indices[1:] >= ray_indices[:-1]).all()):
            return reference_accumulate_along_rays(weights, values, ray_indices, n_rays)
    colors, opacity, _ = composite(weights, values, ray_indices, n_rays, kind="weight")
    return opacity if values is None else colors
