"""tiny-cuda-nn's ``OneBlob`` encoding: per input dim, the mass of a quartic blob of
width 1/n_bins centred at x that falls in each of n_bins equal bins of [0, 1], the blob
wrapping around the unit interval (tcnn's wrap-around form)."""

from __future__ import annotations

import torch

from ._config import check_keys, positive_int, refuse_value
from .encoding_base import EncodingSpec


def quartic_cdf(t: torch.Tensor, inv_radius: float) -> torch.Tensor:
    """CDF of the quartic kernel 15/16 (1 - u^2)^2, u = t * inv_radius, clamped to [0, 1]."""
    u = t * inv_radius
    u2 = u * u
    return torch.clamp(15.0 / 16.0 * u * (1 - 2.0 / 3.0 * u2 + 0.2 * u2 * u2) + 0.5, 0.0, 1.0)


class OneBlobSpec(EncodingSpec):
    def __init__(self, n_input_dims: int, config: dict):
        check_keys("OneBlob", config, {"n_bins"})
        self.n_bins = positive_int("OneBlob", "n_bins", config.get("n_bins", 16))
        if self.n_bins & (self.n_bins - 1):
            refuse_value("OneBlob", "n_bins", self.n_bins, "a power of two, as in tiny-cuda-nn")
        super().__init__(n_input_dims, n_input_dims * self.n_bins)

    def encode(self, x, params):
        bins = self.n_bins
        edges = torch.arange(bins + 1, dtype=x.dtype, device=x.device) / bins  # (B+1,)
        t = edges - x[:, :, None]  # (N, D, B+1)
        cdf = quartic_cdf(t, bins) + quartic_cdf(t - 1.0, bins) + quartic_cdf(t + 1.0, bins)
        return (cdf[..., 1:] - cdf[..., :-1]).reshape(x.shape[0], self.n_encoded)

    def hyperparams(self) -> dict:
        return {"otype": "OneBlob", "n_bins": self.n_bins}
