"""Hierarchical facial appearance encoder: an FPN over the masked source image whose
pyramid levels each become a tri-plane (S^3D-NeRF's multi-scale appearance code).

The pyramid's finer levels also condition the super-resolution network, and its
coarsest level is the token set that slot attention pools into facial regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .layers import ConvBlock, conv


@dataclass
class SourceFeatures:
    planes: list[torch.Tensor]  # per scale (B, 3, H_s, W_s, C), channels-last, coarse to fine
    tokens: torch.Tensor  # (B, H*W, C_tok) coarsest pyramid level, for slot attention
    token_size: int
    pyramid: dict  # resolution -> (B, C, r, r) features for the super-resolution network


class AppearanceEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.encoder_width
        self.resolutions = tuple(cfg.plane_resolutions)
        self.channels = cfg.plane_channels
        self.encoder_resolution = cfg.encoder_resolution
        n_down = 0
        r = cfg.encoder_resolution
        while r > min(self.resolutions):
            r //= 2
            n_down += 1
        if r != min(self.resolutions) or any(cfg.encoder_resolution % p for p in self.resolutions):
            raise ValueError(
                f"plane resolutions {self.resolutions} must be the encoder resolution "
                f"{cfg.encoder_resolution} halved k times"
            )
        widths = [min(w * 2**i, 4 * w) for i in range(n_down)]
        # RGB of the masked face plus the mask itself, so the encoder knows where the face ends.
        self.down = nn.ModuleList()
        cin = 4
        for cout in widths:
            self.down.append(ConvBlock(cin, cout, stride=2))
            cin = cout
        self.level_sizes = [cfg.encoder_resolution // 2 ** (i + 1) for i in range(n_down)]
        fpn = 2 * w
        self.lateral = nn.ModuleDict({str(s): conv(c, fpn, 1) for s, c in zip(self.level_sizes, widths)})
        self.smooth = nn.ModuleDict({str(s): conv(fpn, fpn) for s in self.level_sizes})
        self.to_planes = nn.ModuleDict({str(s): conv(fpn, 3 * self.channels) for s in self.resolutions})
        self.token_channels = fpn

    def forward(self, image: torch.Tensor, face_mask: torch.Tensor) -> SourceFeatures:
        x = torch.cat([image * face_mask, face_mask], 1)
        if x.shape[-1] != self.encoder_resolution:
            size = (self.encoder_resolution, self.encoder_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        # Top-down pathway: each level adds the upsampled coarser one.
        feats = {}
        top = None
        for size, skip in zip(reversed(self.level_sizes), reversed(skips)):
            lat = self.lateral[str(size)](skip)
            top = lat if top is None else lat + F.interpolate(top, size=(size, size), mode="nearest")
            feats[size] = F.silu(self.smooth[str(size)](top))
        planes = []
        B = image.shape[0]
        for s in self.resolutions:
            p = self.to_planes[str(s)](feats[s]).view(B, 3, self.channels, s, s)
            planes.append(p.permute(0, 1, 3, 4, 2).contiguous())  # channels-last for the fused sampler
        coarse = min(self.level_sizes)
        tokens = feats[coarse].flatten(2).transpose(1, 2)
        return SourceFeatures(planes, tokens, coarse, feats)
