"""tiny-cuda-nn's ``TriangleWave`` encoding: per input dim and k = 0..n_frequencies-1,
a triangle wave in [-1, 1] of ``x * 2^(k-1)`` shifted by ``k / 4`` (tcnn's phase offset
that tells locations apart): ``|frac(v) - 0.5| * 4 - 1``."""

from __future__ import annotations

import torch

from ._config import check_keys, positive_int
from .encoding_base import EncodingSpec


class TriangleWaveSpec(EncodingSpec):
    def __init__(self, n_input_dims: int, config: dict):
        check_keys("TriangleWave", config, {"n_frequencies"})
        self.n_frequencies = positive_int("TriangleWave", "n_frequencies", config.get("n_frequencies", 12))
        super().__init__(n_input_dims, n_input_dims * self.n_frequencies)

    def encode(self, x, params):
        k = torch.arange(self.n_frequencies, dtype=x.dtype, device=x.device)
        v = x[:, :, None] * 2.0 ** (k - 1) + 0.25 * k  # (N, D, F)
        frac = v - torch.floor(v).detach()
        return ((frac - 0.5).abs() * 4 - 1).reshape(x.shape[0], self.n_encoded)

    def hyperparams(self) -> dict:
        return {"otype": "TriangleWave", "n_frequencies": self.n_frequencies}
