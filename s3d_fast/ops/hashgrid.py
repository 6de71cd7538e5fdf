"""Fused multi-resolution hash-grid encoding (autograd wrapper over the extension)."""

from __future__ import annotations

import torch

from .. import _ext
from ._first_order import first_order
from ._half import is_half, narrow
from .hashgrid_config import INTERPOLATIONS, HashGridConfig, HashGridLayout

_FUSED_DTYPES = (torch.float32, torch.float64)


class _HashGridEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layout: HashGridLayout, x, params):
        table = params.view(-1, layout.config.n_features_per_level)
        args = (list(layout.offsets), list(layout.scales), INTERPOLATIONS.index(layout.config.interpolation))
        ctx.args = args
        ctx.save_for_backward(x, params)
        return _ext.load().hashgrid_forward(x, table, *args)

    @staticmethod
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        x_grad, params_grad = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        if not (x_grad or params_grad):
            return None, None, None
        table = params.view(-1, grad_out.shape[1] // len(ctx.args[1]))
        with torch.no_grad():
            grad_x, grad_table = _ext.load().hashgrid_backward(
                grad_out.contiguous(), x, table, *ctx.args, x_grad, params_grad
            )
        grads = (grad_x if x_grad else None, grad_table.view(-1) if params_grad else None)
        return (None, *first_order("hashgrid_encode", grads, (grad_out, x, params)))


def hashgrid_encode(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig | None = None, **options
) -> torch.Tensor:
    """Multi-resolution hash-grid encoding with tiny-cuda-nn's semantics.

    Args:
        x: (..., D) positions, D in 1..3, nominally in [0, 1]. Coordinates
            outside are not clamped: as in tiny-cuda-nn the cell coordinate
            wraps (uint32) and the entry index wraps modulo the level's size,
            so the encoding repeats/aliases there instead of failing. Past
            the int range (and at +-inf) the cell saturates; a NaN coordinate
            gives NaN features (docs/kernels/hashgrid.md).
        params: the flat 1-D table, level-major, then entry, then feature
            (tiny-cuda-nn's layout; ``nn.HashGrid.params``).
        config: the grid (:class:`HashGridConfig`); or, instead of it, its
            fields as keyword options (``n_levels=16, per_level_scale=1.5, ...``).

    Returns:
        (..., n_levels * n_features_per_level), feature ``l * F + f``.

    Gradients flow to ``params`` and to ``x``. Float32 and float64, CPU and
    CUDA; float16 and bfloat16 are computed in float32 and cast back. The CPU
    backward is deterministic (no atomics). Second derivatives are refused.
    """
    config = HashGridConfig.coerce(config, options)
    if is_half(x):
        if not isinstance(params, torch.Tensor) or params.dtype != x.dtype:
            got = params.dtype if isinstance(params, torch.Tensor) else type(params).__name__
            raise TypeError(f"hashgrid_encode: params ({got}) and x ({x.dtype}) must share a dtype")
        return narrow(hashgrid_encode(x.float(), params.float(), config), x.dtype)
    x2d, layout, lead = check_encode_inputs("hashgrid_encode", x, params, config, _FUSED_DTYPES)
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"hashgrid_encode runs on cpu or cuda, got {x.device}")
    out = _HashGridEncode.apply(layout, x2d.contiguous(), params.contiguous())
    return out.view(*lead, layout.n_output_dims)


def check_encode_inputs(name: str, x, params, config: HashGridConfig, dtypes):
    """Validate (x, params) of a hash-grid encoding; return (x2d, layout, leading shape).
    Shared with the reference so both refuse the same inputs with the same words."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x must be a tensor, got {type(x).__name__}")
    if not isinstance(params, torch.Tensor):
        raise TypeError(f"{name}: params must be a tensor, got {type(params).__name__}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name}: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if params.dtype != x.dtype:
        raise TypeError(f"{name}: params ({params.dtype}) and x ({x.dtype}) must share a dtype")
    if x.dim() < 1 or x.shape[-1] not in (1, 2, 3):
        raise ValueError(f"{name}: x must be (..., D) with D in 1..3, got shape {tuple(x.shape)}")
    if params.dim() != 1:
        raise ValueError(f"{name}: params must be 1-D (tiny-cuda-nn's flat layout), got shape {tuple(params.shape)}")
    if params.device != x.device:
        raise ValueError(f"{name}: params on {params.device} but x on {x.device}")
    layout = config.layout(x.shape[-1])
    if params.numel() != layout.n_params:
        raise ValueError(
            f"{name}: params has {params.numel()} values but this grid needs {layout.n_params} "
            f"({layout.offsets[-1]} entries x {config.n_features_per_level} features)"
        )
    return x.reshape(-1, x.shape[-1]), layout, tuple(x.shape[:-1])
