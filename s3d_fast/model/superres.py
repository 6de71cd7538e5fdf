"""Super-resolution: the volume-rendered feature image to RGB at the output resolution,
conditioned on the source image.

Convolutions run up to half the output resolution; a pixel-shuffle head then predicts,
per output pixel, a colour and a blend weight with the source image itself. Static
texture (skin, hair, background) is thus taken from the source at full detail, and the
network only paints what moves (mouth, teeth, a turned head) - which is also why full-
resolution convolutions, most of the cost of such a network on a CPU, are not needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import ConvBlock, conv

MOTION_CHANNELS = 4  # rendered expected offset (3) and correlation score (1)
BLEND_LIMIT = 4.0


class SuperResolution(nn.Module):
    def __init__(self, cfg: ModelConfig, pyramid_channels: int, pyramid_sizes):
        super().__init__()
        self.sizes = []
        r = cfg.nerf_resolution
        while r < cfg.output_resolution:
            self.sizes.append(r)
            r *= 2
        if r != cfg.output_resolution or not self.sizes:
            raise ValueError(
                f"output_resolution {cfg.output_resolution} must be nerf_resolution {cfg.nerf_resolution} x 2^k, k >= 1"
            )
        self.output_resolution = cfg.output_resolution
        w = cfg.sr_width
        self.blocks = nn.ModuleList()
        # The feature image plus the rendered motion: the network sees where and how the
        # audio moves the face, not only the colours that result.
        cin = cfg.feature_channels + MOTION_CHANNELS
        self.pyramid_sizes = set(pyramid_sizes)
        for i, size in enumerate(self.sizes):
            cout = max(w // 2 ** i, 16)
            extra = 3 + (pyramid_channels if size in self.pyramid_sizes else 0)
            self.blocks.append(ConvBlock(cin + extra, cout))
            cin = cout
        self.head = nn.Sequential(conv(cin, 4 * 4), nn.PixelShuffle(2))

    def _condition(self, pyramid: dict, image: torch.Tensor, size: int) -> torch.Tensor:
        """The source image at ``size``, with the encoder's pyramid features where it has that level."""
        img = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if size in self.pyramid_sizes:
            return torch.cat([pyramid[size], img], 1)
        return img

    def forward(self, features: torch.Tensor, pyramid: dict, image: torch.Tensor, frames_per_source: int,
                frame_images: torch.Tensor = None) -> torch.Tensor:
        """features (F, C, r, r) with F = B * frames_per_source; pyramid/image per source;
        frame_images (F, 3, R, R), when given, the source as each frame sees it
        (``reproject.py``): it replaces the source image in the conditioning and the blend."""
        x = features
        for size, block in zip(self.sizes, self.blocks):
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            if frame_images is None:
                cond = self._condition(pyramid, image, size).repeat_interleave(frames_per_source, 0)
            else:
                cond = self._condition({k: v.repeat_interleave(frames_per_source, 0) for k, v in pyramid.items()
                                        if k == size}, frame_images, size)
            x = block(torch.cat([x, cond], 1))
        out = self.head(x)  # (F, 4, 2s, 2s): blend logit, colour logits
        R = self.output_resolution
        if out.shape[-1] != R:
            out = F.interpolate(out, size=(R, R), mode="bilinear", align_corners=False)
        per_frame = frame_images is not None
        source = frame_images if per_frame else image
        source = source if source.shape[-1] == R else F.interpolate(
            source, size=(R, R), mode="bilinear", align_corners=False, antialias=True)
        if not per_frame:
            source = source.repeat_interleave(frames_per_source, 0)
        # The blend logit is bounded (|logit| <= 4, blend in [0.018, 0.982]): a free logit
        # learns to copy the source everywhere (the target mostly is the source), grows
        # without bound, saturates the sigmoid and cuts every gradient to the radiance
        # field. Bounded, the network always keeps a share of each pixel to explain.
        blend = torch.sigmoid(BLEND_LIMIT * torch.tanh(out[:, :1] / BLEND_LIMIT))
        return blend * source + (1 - blend) * torch.sigmoid(out[:, 1:])
