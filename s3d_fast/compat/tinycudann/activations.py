"""tiny-cuda-nn's activation functions by name (case-insensitive), as DOCUMENTATION.md
defines them (Squareplus and Softplus "zoomed out" by tcnn's K_ACT = 10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._config import refuse_value

_K_ACT = 10.0


def _squareplus(x):
    z = _K_ACT * x
    return 0.5 * (z + torch.sqrt(z * z + 4)) / _K_ACT


ACTIVATIONS = {
    "none": lambda x: x,
    "relu": F.relu,
    "leakyrelu": lambda x: F.leaky_relu(x, 0.01),
    "silu": F.silu,
    "exponential": torch.exp,
    "sine": torch.sin,
    "sigmoid": torch.sigmoid,
    "squareplus": _squareplus,
    "softplus": lambda x: F.softplus(x, beta=_K_ACT),
    "tanh": torch.tanh,
}
# In place on a layer's fresh output (a linear layer's backward does not read its output):
# no second tensor, and the pass runs on rows still in cache.
IN_PLACE = {"relu": lambda x: F.relu(x, inplace=True)}
NAMES = "None, ReLU, LeakyReLU, SiLU, Exponential, Sine, Sigmoid, Squareplus, Softplus, Tanh"


def activation(component: str, key: str, name) -> str:
    """The canonical (lower-case) name, or a ValueError naming the key."""
    canonical = str(name).lower()
    if canonical not in ACTIVATIONS:
        refuse_value(component, key, name, NAMES)
    return canonical
