"""Fused multilayer perceptron (tiny-cuda-nn's FullyFusedMLP / CutlassMLP): bias-free
layers and their activations computed tile by tile in one kernel (autograd wrapper over
the extension)."""

from __future__ import annotations

import torch

from .. import _ext
from ._first_order import first_order
from ._half import is_half, narrow, widen
from ._mlp_spec import ACTIVATIONS, activation_code, check_mlp_inputs, supported

_FUSED_DTYPES = (torch.float32, torch.float64)

__all__ = ["mlp", "mlp_supported", "ACTIVATIONS"]


class _Mlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, codes, x, *weights):
        out, hidden = _ext.load().mlp_forward(x, list(weights), *codes)
        ctx.codes = codes
        ctx.save_for_backward(x, hidden, out, *weights)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, hidden, out, *weights = ctx.saved_tensors
        x_grad, w_grad = ctx.needs_input_grad[1], any(ctx.needs_input_grad[2:])
        if not (x_grad or w_grad):
            return (None, None, *(None for _ in weights))
        with torch.no_grad():
            grad_x, grad_w = _ext.load().mlp_backward(
                grad_out.contiguous(), x, weights, hidden, out, *ctx.codes, x_grad, w_grad
            )
        grads = (grad_x if x_grad else None,) + tuple(
            g if need else None
            for g, need in zip(grad_w if w_grad else [None] * len(weights), ctx.needs_input_grad[2:])
        )
        return (None, *first_order("mlp", grads, (grad_out, x, out, *weights)))


def mlp_supported(width: int, n_layers: int, activation: str = "relu", output_activation: str = "none") -> bool:
    """Whether :func:`mlp` runs a network of ``n_layers`` weight matrices with hidden
    ``width`` and these activations (tiny-cuda-nn's names, any case)."""
    return supported(width, n_layers, activation, output_activation)


def mlp(
    x: torch.Tensor, weights, activation: str = "relu", output_activation: str = "none", in_ones: int = 0
) -> torch.Tensor:
    """A bias-free MLP: ``h = act(h @ W.T)`` per layer, ``output_activation`` on the last.

    Args:
        x: (..., in) inputs, float32 or float64.
        weights: the (out, in) matrices in layer order, as torch ``Linear`` weights (tcnn's
            row-major layout): ``weights[0]`` (width, in + in_ones), the hidden ones
            (width, width), the last (out, width); a single matrix is a network without
            hidden layers. The hidden width is a multiple of 16 up to 256, at most 9
            matrices (:func:`mlp_supported`).
        activation: of the hidden layers; output_activation: of the last. One of
            None, ReLU, LeakyReLU (slope 0.01), Exponential, Sigmoid, Tanh (any case).
        in_ones: columns of ones implied after x's (tiny-cuda-nn's input padding, which
            acts as a first-layer bias): ``weights[0]``'s last ``in_ones`` columns
            multiply them.

    Returns:
        (..., out).

    Gradients flow to ``x`` and to every weight. Float32 and float64, CPU and CUDA;
    float16 and bfloat16 are computed in float32 and cast back. The CPU backward is
    deterministic for a given thread count (each thread sums a fixed range of rows, the
    sums are added in thread order); CUDA sums the weight gradients with float atomics.
    The backward pass keeps each hidden layer's activations (rows padded to 64).
    Second derivatives are refused.
    """
    codes = (
        in_ones,
        activation_code("activation", activation),
        activation_code("output_activation", output_activation),
    )
    if is_half(x) and isinstance(weights, (list, tuple)):
        names = ("x",) + tuple(f"weights[{i}]" for i in range(len(weights)))
        x32, *w32 = widen("mlp", names, (x, *weights))
        return narrow(mlp(x32, w32, activation, output_activation, in_ones), x.dtype)
    x2d, weights, lead = check_mlp_inputs("mlp", x, weights, in_ones, _FUSED_DTYPES)
    width = weights[0].shape[0]
    if len(weights) > 1 and not supported(width, len(weights), activation, output_activation):
        raise ValueError(f"mlp: the hidden width must be a multiple of 16 up to 256, got {width}")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"mlp runs on cpu or cuda, got {x.device}")
    out = _Mlp.apply(codes, x2d.contiguous(), *(w.contiguous() for w in weights))
    return out.view(*lead, weights[-1].shape[0])
