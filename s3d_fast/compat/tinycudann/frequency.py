"""tiny-cuda-nn's ``Frequency`` encoding: per input dim, ``sin(2^k pi x), cos(2^k pi x)``
for k = 0..n_frequencies-1, interleaved (sin, cos) per frequency, dims one after another."""

from __future__ import annotations

import math

import torch

from ._config import check_keys, positive_int
from .encoding_base import EncodingSpec


class FrequencySpec(EncodingSpec):
    def __init__(self, n_input_dims: int, config: dict):
        check_keys("Frequency", config, {"n_frequencies"})
        self.n_frequencies = positive_int("Frequency", "n_frequencies", config.get("n_frequencies", 12))
        super().__init__(n_input_dims, n_input_dims * 2 * self.n_frequencies)

    def encode(self, x, params):
        scales = torch.pi * 2.0 ** torch.arange(self.n_frequencies, dtype=x.dtype, device=x.device)
        phase = x[:, :, None] * scales  # (N, D, F)
        # cos as sin(phase + pi/2), as tcnn writes it: one function, the same derivative
        out = torch.stack([torch.sin(phase), torch.sin(phase + math.pi / 2)], dim=-1)  # (N, D, F, 2)
        return out.reshape(x.shape[0], self.n_encoded)

    def hyperparams(self) -> dict:
        return {"otype": "Frequency", "n_frequencies": self.n_frequencies}
