"""Decoder: the aggregated multi-scale tri-plane feature of a canonical point to a
density and a feature vector whose first 3 channels are colour."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..ops import triplane_sample
from .layers import MLP

DENSITY_SCALE = 10.0  # softplus units -> density per box unit; a surface stops a ray within ~0.1


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cin = cfg.plane_channels * len(cfg.plane_resolutions)
        self.feature_channels = cfg.feature_channels
        self.mlp = MLP(cin, cfg.decoder_hidden, 1 + cfg.feature_channels, layers=2)
        with torch.no_grad():
            self.mlp[-1].bias[0] = -3.0  # start nearly empty rather than as an opaque fog
        # The mouth cavity's one feature vector, shared by every face (``mouth_cavity``):
        # colour logits start dark (sigmoid(-3) = 0.05), the other channels at 0.
        self.cavity = None
        if cfg.mouth_cavity:
            self.cavity = nn.Parameter(torch.cat([torch.full((3,), -3.0), torch.zeros(cfg.feature_channels - 3)]))

    def sample(self, planes, x: torch.Tensor) -> torch.Tensor:
        """planes: per scale (B, 3, H, W, C); x (B, N, 3) canonical points -> (B, N, C * scales)."""
        # The fused sampler takes float32/64: under CUDA autocast the encoder's planes are
        # bfloat16, so they are widened here (a no-op in float32).
        return triplane_sample([p.float() for p in planes], x.float(), plane_reduce="sum", scale_reduce="concat")

    def forward(self, planes, x: torch.Tensor):
        out = self.mlp(self.sample(planes, x))
        # Made contiguous first: PyTorch's CPU activations are several times slower on a
        # strided column than on a copy of it.
        sigma = F.softplus(out[..., 0].contiguous()) * DENSITY_SCALE
        colour = torch.sigmoid(out[..., 1:4].contiguous())
        return sigma, torch.cat([colour, out[..., 4:]], -1)

    def blend_cavity(self, feature: torch.Tensor, share, colour=None) -> torch.Tensor:
        """feature (..., C) from ``forward``; share (...) in (0, 1) from the deformation
        field, or None: the feature with that share of it replaced by the cavity's.
        ``colour`` (..., 3): the cavity's colour at each point (``mouth_interior``), in
        place of its one learned colour."""
        if share is None or self.cavity is None:
            return feature
        if colour is None:
            cavity = torch.cat([torch.sigmoid(self.cavity[:3]), self.cavity[3:]]).to(feature.dtype).expand_as(feature)
        else:
            rest = self.cavity[3:].to(feature.dtype).expand(*feature.shape[:-1], -1)
            cavity = torch.cat([colour.to(feature.dtype), rest], -1)
        return torch.lerp(feature, cavity, share.unsqueeze(-1).to(feature.dtype))

    def density(self, planes, x: torch.Tensor) -> torch.Tensor:
        return self.forward(planes, x)[0]
