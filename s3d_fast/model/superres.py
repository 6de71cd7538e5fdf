"""Super-resolution: the volume-rendered feature image to RGB at the output resolution,
conditioned on the source image (its pyramid features and, at full size, its pixels),
which carry texture (skin, teeth, hair) that the low-resolution render cannot."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import ConvBlock, conv

MOTION_CHANNELS = 4


class SuperResolution(nn.Module):
    def __init__(self, cfg: ModelConfig, pyramid_channels: int):
        super().__init__()
        self.sizes = []
        r = cfg.nerf_resolution
        while r <= cfg.output_resolution:
            self.sizes.append(r)
            r *= 2
        if self.sizes[-1] != cfg.output_resolution:
            raise ValueError(f"output_resolution {cfg.output_resolution} must be nerf_resolution {cfg.nerf_resolution} x 2^k")
        self.input_resolution = cfg.input_resolution
        w = cfg.sr_width
        self.blocks = nn.ModuleList()
        # The feature image plus the rendered motion (expected offset, 3) and correlation
        # score (1): the super-resolution network sees where and how the audio moves the face.
        cin = cfg.feature_channels + MOTION_CHANNELS
        for i, size in enumerate(self.sizes):
            cout = max(w // 2 ** i, 16)
            extra = pyramid_channels if size < cfg.input_resolution else 3
            # At full resolution one conv: most of the cost of the network lives there.
            last = size == self.sizes[-1] and len(self.sizes) > 1
            self.blocks.append(nn.Sequential(conv(cin + extra, cout), nn.SiLU()) if last else ConvBlock(cin + extra, cout))
            cin = cout
        self.to_rgb = conv(cin, 3)

    def _condition(self, pyramid: dict, image: torch.Tensor, size: int) -> torch.Tensor:
        if size in pyramid:
            return pyramid[size]
        if size >= self.input_resolution:
            return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        nearest = min(pyramid, key=lambda s: abs(s - size))
        return F.interpolate(pyramid[nearest], size=(size, size), mode="bilinear", align_corners=False)

    def forward(self, features: torch.Tensor, pyramid: dict, image: torch.Tensor, frames_per_source: int) -> torch.Tensor:
        """features (F, C, r, r) with F = B * frames_per_source; pyramid/image per source."""
        x = features
        for size, block in zip(self.sizes, self.blocks):
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            cond = self._condition(pyramid, image, size).repeat_interleave(frames_per_source, 0)
            x = block(torch.cat([x, cond], 1))
        return torch.sigmoid(self.to_rgb(x))
