"""Argument checks of the MLP op, shared by the fused op and its reference so both refuse
the same inputs with the same words."""

from __future__ import annotations

import math

import torch

# tiny-cuda-nn's names (lower case) in the kernel's order (s3d/mlp.h, Activation); each
# derivative is computed from the activation's output.
ACTIVATIONS = ("none", "relu", "leakyrelu", "exponential", "sigmoid", "tanh")
MAX_LAYERS = 9  # up to 8 hidden layers
MAX_WIDTH = 256
ALIGN = 16


def activation_code(name: str, value) -> int:
    if not isinstance(value, str) or value.lower() not in ACTIVATIONS:
        raise ValueError(f"mlp: {name} must be one of {', '.join(ACTIVATIONS)}, got {value!r}")
    return ACTIVATIONS.index(value.lower())


def supported(width: int, n_layers: int, activation: str, output_activation: str) -> bool:
    """Whether the fused op runs this network: hidden width a multiple of 16 up to 256
    (any with no hidden layer), 1 to 9 layers, both activations in ACTIVATIONS."""
    return (
        1 <= n_layers <= MAX_LAYERS
        and (n_layers == 1 or (width % ALIGN == 0 and 0 < width <= MAX_WIDTH))
        and activation.lower() in ACTIVATIONS
        and output_activation.lower() in ACTIVATIONS
    )


def check_mlp_inputs(op: str, x, weights, in_ones, dtypes) -> tuple:
    """Validate (x, weights, in_ones); return (x2d, weights as a list, leading shape)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: x must be a tensor, got {type(x).__name__}")
    if isinstance(weights, torch.Tensor) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{op}: weights must be a list of (out, in) tensors, got {type(weights).__name__}")
    weights = list(weights)
    if not 1 <= len(weights) <= MAX_LAYERS:
        raise ValueError(f"{op}: weights must hold 1 to {MAX_LAYERS} matrices, got {len(weights)}")
    if isinstance(in_ones, bool) or not isinstance(in_ones, int) or in_ones < 0:
        raise ValueError(f"{op}: in_ones must be an int >= 0, got {in_ones!r}")
    if x.dtype not in dtypes:
        raise TypeError(f"{op}: x must be one of {', '.join(str(d) for d in dtypes)}, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{op}: x must be (..., in), got a 0-d tensor")
    width = None
    for i, w in enumerate(weights):
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"{op}: weights[{i}] must be a tensor, got {type(w).__name__}")
        if w.dtype != x.dtype:
            raise TypeError(f"{op}: weights[{i}] is {w.dtype} but x is {x.dtype}")
        if w.device != x.device:
            raise ValueError(f"{op}: weights[{i}] is on {w.device} but x on {x.device}")
        if w.dim() != 2 or w.shape[0] == 0:
            raise ValueError(f"{op}: weights[{i}] must be (out, in) with out >= 1, got {tuple(w.shape)}")
        expected_in = x.shape[-1] + in_ones if i == 0 else width
        if w.shape[1] != expected_in:
            what = "x's columns + in_ones" if i == 0 else "the previous layer's outputs"
            raise ValueError(
                f"{op}: weights[{i}] has {w.shape[1]} columns, expected {expected_in} ({what}); got {tuple(w.shape)}"
            )
        if 0 < i < len(weights) - 1 and w.shape[0] != width:
            raise ValueError(f"{op}: hidden weights[{i}] must be ({width}, {width}), got {tuple(w.shape)}")
        width = w.shape[0]
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1]), weights, x.shape[:-1]
