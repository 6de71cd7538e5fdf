"""tiny-cuda-nn's public modules: ``Encoding``, ``Network``, ``NetworkWithInputEncoding``.

Parameter layout, as tcnn's: an Encoding's own (a grid's table; composites in nested
order); a Network's MLP weights (mlp.py); a NetworkWithInputEncoding's MLP weights first,
then its encoding's. A Network is an MLP behind an Identity encoding padded to 16 with ones."""

from __future__ import annotations

import numpy as np
import torch

from .encoding_factory import make_encoding
from .mlp import ALIGNMENT, MlpSpec, round_up
from .module import Module


class Encoding(Module):
    """Input encoding (tcnn's ``Encoding``): (batch, n_input_dims) -> (batch, n_output_dims)."""

    def __init__(self, n_input_dims: int, encoding_config: dict, seed: int = 1337, dtype=None):
        if dtype not in (None, torch.float32, torch.float16):
            raise ValueError(f"Encoding only supports fp32 or fp16 precision, but got {dtype}")
        self.n_input_dims = n_input_dims
        self.encoding_config = encoding_config
        self.spec = make_encoding(n_input_dims, encoding_config)
        super().__init__(seed)
        self._explicit_dtype = dtype
        self.n_output_dims = self.spec.padded_output_width

    def _initial_params(self, rng) -> np.ndarray:
        return self.spec.initialize(rng)

    def _compute(self, x, params):
        return self.spec.forward(x, params)

    def hyperparams(self) -> dict:
        return self.spec.hyperparams()


class Network(Module):
    """An MLP (tcnn's ``Network``): FullyFusedMLP or CutlassMLP."""

    def __init__(self, n_input_dims: int, n_output_dims: int, network_config: dict, seed: int = 1337):
        self.n_input_dims = n_input_dims
        self.n_output_dims = n_output_dims
        self.network_config = network_config
        self.input_width = round_up(n_input_dims, ALIGNMENT)
        self.mlp = MlpSpec(self.input_width, n_output_dims, network_config)
        super().__init__(seed)

    def _initial_params(self, rng) -> np.ndarray:
        return self.mlp.initialize(rng)

    def _compute(self, x, params):
        # the Identity encoding's padding: ones, as the first layer's bias
        return self.mlp.forward(x, params, n_ones=self.input_width - self.n_input_dims)

    def hyperparams(self) -> dict:
        encoding = {"otype": "Identity"}
        return {"otype": "NetworkWithInputEncoding", "encoding": encoding, "network": self.mlp.hyperparams()}


class NetworkWithInputEncoding(Module):
    """An encoding followed by an MLP (tcnn's ``NetworkWithInputEncoding``)."""

    def __init__(
        self, n_input_dims: int, n_output_dims: int, encoding_config: dict, network_config: dict, seed: int = 1337
    ):
        self.n_input_dims = n_input_dims
        self.n_output_dims = n_output_dims
        self.encoding_config = encoding_config
        self.network_config = network_config
        self.encoding = make_encoding(n_input_dims, encoding_config)
        self.encoding.set_alignment(ALIGNMENT)
        self.mlp = MlpSpec(self.encoding.padded_output_width, n_output_dims, network_config)
        super().__init__(seed)

    def _initial_params(self, rng) -> np.ndarray:
        return np.concatenate([self.mlp.initialize(rng), self.encoding.initialize(rng)])

    def _compute(self, x, params):
        # split, not slices: autograd then concatenates the two gradients instead of
        # zero-filling and adding a table-sized gradient per slice
        mlp_params, encoding_params = params.split([self.mlp.n_params, self.encoding.n_params])
        return self.mlp.forward(self.encoding.forward(x, encoding_params), mlp_params)

    def hyperparams(self) -> dict:
        return {
            "otype": "NetworkWithInputEncoding",
            "encoding": self.encoding.hyperparams(),
            "network": self.mlp.hyperparams(),
        }
