"""Pure-PyTorch MLP: the F.linear chain with tiny-cuda-nn's activations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._mlp_spec import activation_code, check_mlp_inputs

_FUNCTIONS = (
    lambda h: h,
    F.relu,
    lambda h: F.leaky_relu(h, 0.01),
    torch.exp,
    torch.sigmoid,
    torch.tanh,
)


def mlp(
    x: torch.Tensor, weights, activation: str = "relu", output_activation: str = "none", in_ones: int = 0
) -> torch.Tensor:
    """Same signature and result as :func:`s3d_fast.ops.mlp`."""
    hidden = _FUNCTIONS[activation_code("activation", activation)]
    last = _FUNCTIONS[activation_code("output_activation", output_activation)]
    dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    x2d, weights, lead = check_mlp_inputs("reference.mlp", x, weights, in_ones, dtypes)
    h = torch.cat((x2d, x2d.new_ones(x2d.shape[0], in_ones)), dim=1) if in_ones else x2d
    for i, w in enumerate(weights):
        h = F.linear(h, w)
        h = last(h) if i == len(weights) - 1 else hidden(h)
    return h.reshape(*lead, weights[-1].shape[0])
