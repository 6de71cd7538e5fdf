"""Fused multi-resolution hash-grid encoding (autograd wrapper over the extension)."""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .. import _ext
from ._hashgrid_spec import INTERPOLATIONS, HashGridLayout, check_encode_inputs

_FUSED_DTYPES = (torch.float32, torch.float64)


class _HashGridEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layout: HashGridLayout, x, params):
        table = params.view(-1, layout.n_features_per_level)
        args = (list(layout.offsets), list(layout.scales), INTERPOLATIONS.index(layout.interpolation))
        ctx.args = args
        ctx.save_for_backward(x, params)
        return _ext.load().hashgrid_forward(x, table, *args)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        x_grad, params_grad = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        if not (x_grad or params_grad):
            return None, None, None
        table = params.view(-1, grad_out.shape[1] // len(ctx.args[1]))
        grad_x, grad_table = _ext.load().hashgrid_backward(
            grad_out.contiguous(), x, table, *ctx.args, x_grad, params_grad
        )
        return None, grad_x if x_grad else None, grad_table.view(-1) if params_grad else None


def hashgrid_encode(
    x: torch.Tensor,
    params: torch.Tensor,
    n_levels: int = 16,
    n_features_per_level: int = 2,
    log2_hashmap_size: int = 19,
    base_resolution: int = 16,
    per_level_scale: float = 2.0,
    interpolation: str = "linear",
    grid_type: str = "hash",
) -> torch.Tensor:
    """Multi-resolution hash-grid encoding with tiny-cuda-nn's semantics.

    Args:
        x: (..., D) positions, D in 1..3, nominally in [0, 1]. Coordinates
            outside are not clamped: as in tiny-cuda-nn the cell coordinate
            wraps (uint32) and the entry index wraps modulo the level's size,
            so the encoding repeats/aliases there instead of failing.
        params: the flat 1-D table, level-major, then entry, then feature
            (tiny-cuda-nn's layout; ``nn.HashGrid.params``).
        n_levels ... grid_type: as in tiny-cuda-nn's HashGrid/DenseGrid config;
            ``grid_type`` is ``hash`` (hash levels once resolution^D exceeds
            2^log2_hashmap_size) or ``dense``.

    Returns:
        (..., n_levels * n_features_per_level), feature ``l * F + f``.

    Gradients flow to ``params`` and to ``x``. Float32 and float64, CPU and
    CUDA; the CPU backward is deterministic (no atomics).
    """
    layout_kwargs = dict(
        n_levels=n_levels,
        n_features_per_level=n_features_per_level,
        log2_hashmap_size=log2_hashmap_size,
        base_resolution=base_resolution,
        per_level_scale=per_level_scale,
        interpolation=interpolation,
        grid_type=grid_type,
    )
    x2d, layout, lead = check_encode_inputs("hashgrid_encode", x, params, layout_kwargs, _FUSED_DTYPES)
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"hashgrid_encode runs on cpu or cuda, got {x.device}")
    out = _HashGridEncode.apply(layout, x2d.contiguous(), params.contiguous())
    return out.view(*lead, layout.n_output_dims)


def random_gather_rate_probe(table: torch.Tensor, n: int) -> float:
    """Benchmark helper: ``n`` random 8-byte gathers from a (entries, 2)
    float32 CPU table (the memory roofline of the encoding). Returns a checksum."""
    return _ext.load().hashgrid_random_gather(table, int(n))
