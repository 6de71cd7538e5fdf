"""tiny-cuda-nn's ``Identity`` encoding: ``x * scale + offset`` per dim."""

from __future__ import annotations

from ._config import check_keys
from .encoding_base import EncodingSpec


class IdentitySpec(EncodingSpec):
    def __init__(self, n_input_dims: int, config: dict):
        check_keys("Identity", config, {"scale", "offset"})
        super().__init__(n_input_dims, n_input_dims)
        self.scale = float(config.get("scale", 1.0))
        self.offset = float(config.get("offset", 0.0))

    def encode(self, x, params):
        return x * self.scale + self.offset

    def hyperparams(self) -> dict:
        return {"otype": "Identity", "scale": self.scale, "offset": self.offset}
