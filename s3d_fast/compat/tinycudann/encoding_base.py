"""What every encoding shares: its widths, its padding (tiny-cuda-nn pads an encoding's
output to the alignment the next component needs), and its parameter slice."""

from __future__ import annotations

import numpy as np
import torch


class EncodingSpec:
    """An encoding of ``n_input_dims`` dims to ``n_encoded`` values, padded to
    ``padded_output_width`` with ``pad_value`` (at the end, or in front where tcnn does).
    Subclasses set ``n_encoded`` and implement ``encode``; those with parameters set
    ``n_params`` and ``initialize``."""

    n_params = 0
    pad_value = 1.0  # tcnn's non-grid encodings pad with ones (a bias to the next layer)
    pad_front = False
    required_output_alignment = 1

    def __init__(self, n_input_dims: int, n_encoded: int):
        self.n_input_dims = n_input_dims
        self.n_encoded = n_encoded
        self.n_to_pad = 0

    @property
    def padded_output_width(self) -> int:
        return self.n_encoded + self.n_to_pad

    @property
    def output_width(self) -> int:
        return self.n_encoded

    def set_padded_output_width(self, width: int) -> None:
        if width < self.n_encoded:
            raise ValueError(f"padded width {width} below the encoding's {self.n_encoded} outputs")
        self.n_to_pad = width - self.n_encoded

    def set_alignment(self, alignment: int) -> None:
        step = int(np.lcm(max(alignment, 1), self.required_output_alignment))
        self.set_padded_output_width(-(-self.output_width // step) * step)

    def encode(self, x: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """(N, n_input_dims) -> (N, padded_output_width)."""
        out = self.encode(x, params)
        if not self.n_to_pad:
            return out
        pad = out.new_full((out.shape[0], self.n_to_pad), self.pad_value)
        return torch.cat([pad, out] if self.pad_front else [out, pad], dim=1)

    def initialize(self, rng) -> np.ndarray:
        """float32 initial parameters, drawing from tcnn's generator ``rng`` as tcnn does."""
        return np.zeros(0, dtype=np.float32)

    def hyperparams(self) -> dict:
        raise NotImplementedError
