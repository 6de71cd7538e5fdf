"""A random camera response for training items: per-channel gains (white balance), exposure,
gamma and saturation, drawn once per item and applied alike to its source and every target,
so the pair still shows one head under one camera.

SynthTalk's classic heads share one renderer's colours; a photo's camera does not. Jittering
the response teaches the encoder and the region slots what a colour shift is not: motion
(``train.colour_jitter``; docs/data.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Log-range of each factor at strength 1: gains and exposure within about x0.7..x1.4, gamma
# x0.67..x1.5, saturation x0.6..x1.6.
_GAIN, _EXPOSURE, _GAMMA, _SATURATION = 0.3, 0.35, 0.4, 0.5
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ColourResponse:
    gains: tuple[float, float, float]  # per channel, exposure included
    gamma: float
    saturation: float

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images (..., 3, H, W) in [0, 1] -> the same under this response, in [0, 1]."""
        if images.dim() < 3 or images.shape[-3] != 3:
            raise ValueError(f"ColourResponse: images must be (..., 3, H, W), got {tuple(images.shape)}")
        x = images
        if self.gains != (1.0, 1.0, 1.0):
            x = (x * x.new_tensor(self.gains).view(3, 1, 1)).clamp_(0.0, 1.0)
        if self.gamma != 1.0:
            x = x.pow(self.gamma)
        if self.saturation != 1.0:
            luma = (x * x.new_tensor(_LUMA).view(3, 1, 1)).sum(-3, keepdim=True)
            x = (luma + self.saturation * (x - luma)).clamp_(0.0, 1.0)
        return x


def random_response(rng: np.random.Generator, strength: float) -> ColourResponse:
    """A response whose factors lie within ``strength`` (0..1) of the ranges above, log-uniform."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"colour jitter strength must be in [0, 1], got {strength}")
    exposure = rng.uniform(-_EXPOSURE, _EXPOSURE) * strength
    gains = np.exp(rng.uniform(-_GAIN, _GAIN, 3) * strength + exposure)
    gamma = float(np.exp(rng.uniform(-_GAMMA, _GAMMA) * strength))
    saturation = float(np.exp(rng.uniform(-_SATURATION, _SATURATION) * strength))
    return ColourResponse(tuple(float(g) for g in gains), gamma, saturation)
