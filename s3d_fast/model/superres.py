"""Super-resolution: the volume-rendered feature image to RGB at the output resolution,
conditioned on the source image.

Convolutions run up to half the output resolution; a pixel-shuffle head then predicts,
per output pixel, a colour and a blend weight with the source image itself. Static
texture (skin, hair, background) is thus taken from the source at full detail, and the
network only paints what moves (mouth, teeth, a turned head) - which is also why full-
resolution convolutions, most of the cost of such a network on a CPU, are not needed.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .layers import ConvBlock, conv

MOTION_CHANNELS = 4  # rendered expected offset (3) and correlation score (1)
BLEND_LIMIT = 4.0
CHANNELS_LAST = torch.channels_last


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
            cout = max(w // 2**i, 16)
            extra = 3 + (pyramid_channels if size in self.pyramid_sizes else 0)
            self.blocks.append(ConvBlock(cin + extra, cout))
            cin = cout
        self.head = nn.Sequential(conv(cin, 4 * 4), nn.PixelShuffle(2))

    @staticmethod
    def _source_at(image: torch.Tensor, frame_images, size: int, frames_per_source: int) -> torch.Tensor:
        """The source at ``size``, one per frame: as each frame sees it (``frame_images``)
        when given, else each source image repeated for its frames."""
        per_frame = frame_images is not None
        img = frame_images if per_frame else image
        if img.shape[-1] != size:
            img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return img if per_frame else img.repeat_interleave(frames_per_source, 0)

    def forward(
        self,
        features: torch.Tensor,
        pyramid: dict,
        image: torch.Tensor,
        frames_per_source: int,
        frame_images: torch.Tensor = None,
        keep_out: torch.Tensor = None,
    ) -> torch.Tensor:
        """features (F, C, r, r) with F = B * frames_per_source; pyramid/image per source;
        frame_images (F, 3, R, R), when given, the source as each frame sees it
        (``reproject.py``): it replaces the source image in the conditioning and the blend.
        keep_out (F, 1, R, R) in [0, 1], when given: where the source may not be blended in."""
        # Channels last through the convolutions: on a CPU, oneDNN's convolutions and
        # PyTorch's bilinear upsampling take half the time in that layout.
        x = features.contiguous(memory_format=CHANNELS_LAST)
        for size, block in zip(self.sizes, self.blocks):
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            parts = [x]
            if size in self.pyramid_sizes:  # the encoder's features where it has this level
                level = pyramid[size].contiguous(memory_format=CHANNELS_LAST)
                parts.append(level if level.shape[0] == 1 else level.repeat_interleave(frames_per_source, 0))
            parts.append(self._source_at(image, frame_images, size, frames_per_source))
            x = block(_cat_channels_last(parts))
        out = self.head(x).contiguous()  # (F, 4, 2s, 2s): blend logit, colour logits
        R = self.output_resolution
        if out.shape[-1] != R:
            out = F.interpolate(out, size=(R, R), mode="bilinear", align_corners=False)
        source = self._source_at(image, frame_images, R, frames_per_source)
        # The blend logit is bounded (|logit| <= 4, blend in [0.018, 0.982]): a free logit
        # learns to copy the source everywhere (the target mostly is the source), grows
        # without bound, saturates the sigmoid and cuts every gradient to the radiance
        # field. Bounded, the network always keeps a share of each pixel to explain.
        blend = torch.sigmoid(BLEND_LIMIT * _tanh(out[:, :1] / BLEND_LIMIT))
        if keep_out is not None:
            if keep_out.shape[-1] != R:  # made at the input resolution, as the source is
                keep_out = F.interpolate(keep_out, size=(R, R), mode="bilinear", align_corners=False, antialias=True)
            # The source's mouth is one moment of it (a closed mouth, usually). Copied,
            # it is the cheapest answer to most frames and leaves the audio nothing to
            # move (docs/experiments.md, "Reprojection and the mouth keep-out").
            blend = blend * (1 - keep_out)
        colour = torch.sigmoid(out[:, 1:])
        dtype = torch.promote_types(colour.dtype, source.dtype)  # bfloat16 under autocast, the source float32
        return torch.lerp(colour.to(dtype), source.to(dtype), blend.to(dtype))


def _cat_channels_last(parts) -> torch.Tensor:
    """``torch.cat(parts, 1)`` laid out channels last, whatever each part's layout; a part
    of batch 1 is shared by every frame. Written part by part into the output: a cat of
    mixed layouts is laid out channels first, and converting it costs more than the cat."""
    n = max(p.shape[0] for p in parts)
    channels = sum(p.shape[1] for p in parts)
    dtype = functools.reduce(torch.promote_types, (p.dtype for p in parts))  # as torch.cat promotes
    size = parts[0].shape[2:]
    out = torch.empty(n, channels, *size, dtype=dtype, device=parts[0].device, memory_format=CHANNELS_LAST)
    start = 0
    for part in parts:
        out[:, start : start + part.shape[1]] = part
        start += part.shape[1]
    return out


def _tanh(v: torch.Tensor) -> torch.Tensor:
    """tanh(v) as 2 sigmoid(2 v) - 1: the same function, and PyTorch's CPU sigmoid is
    several times faster than its tanh."""
    return torch.sigmoid(2 * v) * 2 - 1
