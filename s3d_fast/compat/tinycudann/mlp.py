"""tiny-cuda-nn's ``FullyFusedMLP`` and ``CutlassMLP`` in PyTorch, on tcnn's parameter layout.

Layout (tcnn's ``m_weight_matrices``, row-major ``GPUMatrix<T, RM>``): bias-free weight
matrices concatenated in layer order, each (out, in) row-major, i.e. a torch ``Linear``
weight: (n_neurons, input_width), n_hidden_layers - 1 times (n_neurons, n_neurons), then
(padded_output_width, n_neurons). ``input_width`` is the encoding's output padded to a
multiple of 16 (the padding holds ones, or zeros after a grid, so those columns act as a
first-layer bias); ``padded_output_width`` is n_output_dims rounded up to 16, of which the
first n_output_dims are returned. CutlassMLP with 0 hidden layers is one
(padded_output_width, input_width) matrix. Initialisation: tcnn's, matrix by matrix from
its generator: Xavier-uniform over the padded shapes, or SIREN's for Sine activations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...ops.mlp_op import mlp as fused_mlp
from ...ops.mlp_op import mlp_supported
from ._config import check_keys, positive_int, refuse_value, same_name
from .activations import ACTIVATIONS, IN_PLACE, activation

ALIGNMENT = 16  # tcnn's REQUIRED_ALIGNMENT for both MLPs (16x16x16 tensor-core tiles)
FULLY_FUSED_WIDTHS = (16, 32, 64, 128)
KEYS = {"activation", "output_activation", "n_neurons", "n_hidden_layers"}
_FUSED_DTYPES = (torch.float32, torch.float64)


def network_type(config: dict) -> str:
    """tcnn's select_network: FullyFusedMLP / MegakernelMLP, or CutlassMLP / MLP (the default)."""
    otype = str(config.get("otype", "MLP"))
    if any(same_name(otype, n) for n in ("FullyFusedMLP", "MegakernelMLP")):
        return "FullyFusedMLP"
    if any(same_name(otype, n) for n in ("CutlassMLP", "MLP")):
        return "CutlassMLP"
    refuse_value("network", "otype", otype, "FullyFusedMLP or CutlassMLP")


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class MlpSpec:
    def __init__(self, input_width: int, n_output_dims: int, config: dict):
        kind = network_type(check_keys("network", config, KEYS))
        self.otype = kind
        self.n_neurons = positive_int(kind, "n_neurons", config.get("n_neurons", 128))
        hidden = config.get("n_hidden_layers", 5)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < (1 if kind == "FullyFusedMLP" else 0):
            refuse_value(kind, "n_hidden_layers", hidden, "at least 1" if kind == "FullyFusedMLP" else "at least 0")
        if kind == "FullyFusedMLP" and self.n_neurons not in FULLY_FUSED_WIDTHS:
            refuse_value(kind, "n_neurons", self.n_neurons, "16, 32, 64 or 128; CutlassMLP takes any width")
        self.n_hidden_layers = hidden
        self.activation = activation(kind, "activation", config.get("activation", "ReLU"))
        self.output_activation = activation(kind, "output_activation", config.get("output_activation", "None"))
        self.input_width = input_width
        self.n_output_dims = n_output_dims
        self.padded_output_width = round_up(n_output_dims, ALIGNMENT)
        width = self.n_neurons
        if hidden == 0:
            self.shapes = [(self.padded_output_width, input_width)]
        else:
            self.shapes = [(width, input_width)] + [(width, width)] * (hidden - 1) + [(self.padded_output_width, width)]
        self.n_params = sum(r * c for r, c in self.shapes)
        self.fused = mlp_supported(width, len(self.shapes), self.activation, self.output_activation)

    def weights(self, params):
        """The (out, in) weight views of the flat ``params``, in layer order."""
        flat = params.split([rows * cols for rows, cols in self.shapes])
        return [w.view(shape) for w, shape in zip(flat, self.shapes)]

    def forward(self, h, params, n_ones: int = 0):
        """(N, input_width - n_ones) -> (N, n_output_dims); the input's last ``n_ones``
        columns are ones (padding), applied as the first layer's bias instead of copied in.
        The fused op (s3d_fast.ops.mlp) runs it when it supports the widths and activations;
        otherwise an F.linear chain."""
        mats = self.weights(params)
        # only the rows of the outputs returned: the padded rows' gradients are zero either way
        mats[-1] = mats[-1][: self.n_output_dims]
        if self.fused and h.dtype in _FUSED_DTYPES and h.device.type in ("cpu", "cuda"):
            return fused_mlp(h, mats, self.activation, self.output_activation, in_ones=n_ones)
        act = IN_PLACE.get(self.activation, ACTIVATIONS[self.activation])
        last = IN_PLACE.get(self.output_activation, ACTIVATIONS[self.output_activation])
        for i, w in enumerate(mats):
            if i == 0 and n_ones:
                h = F.linear(h, w[:, :-n_ones], w[:, -n_ones:].sum(1))
            else:
                h = F.linear(h, w)
            h = act(h) if i < len(mats) - 1 else last(h)
        return h

    def initialize(self, rng) -> np.ndarray:
        f32 = np.float32
        parts = []
        for i, (rows, cols) in enumerate(self.shapes):
            if self.activation == "sine":  # SIREN: 30 / fan_in first, sqrt(6 / fan_in) after
                scale = f32(30.0) / f32(cols) if i == 0 else np.sqrt(f32(6.0) / f32(cols))
            else:  # Xavier-uniform
                scale = np.sqrt(f32(6.0) / f32(cols + rows))
            u = rng.next_floats(rows * cols)
            parts.append(u * f32(2.0) * f32(scale) - f32(scale))  # float32 steps, as tcnn's host loop
        return np.concatenate(parts)

    def hyperparams(self) -> dict:
        return {
            "otype": self.otype,
            "activation": self.activation,
            "output_activation": self.output_activation,
            "n_neurons": self.n_neurons,
            "n_hidden_layers": self.n_hidden_layers,
        }
