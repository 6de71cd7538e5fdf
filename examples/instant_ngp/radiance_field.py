"""Instant-NGP's radiance field, written against tiny-cuda-nn's API as NeRF code bases
write it: a multiresolution hash grid feeding a small fused MLP for density and geometry
features, spherical harmonics of the view direction, and a second fused MLP for colour."""

from __future__ import annotations

import math

import tinycudann as tcnn
import torch


class _TruncExp(torch.autograd.Function):
    """exp whose gradient is clamped: densities start near zero without exploding updates."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(-15, 15))


trunc_exp = _TruncExp.apply


class NGPRadianceField(torch.nn.Module):
    def __init__(
        self,
        aabb,
        n_levels: int = 16,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        geo_feat_dim: int = 15,
    ):
        super().__init__()
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32))
        self.geo_feat_dim = geo_feat_dim
        per_level_scale = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (n_levels - 1))
        self.direction_encoding = tcnn.Encoding(3, {"otype": "SphericalHarmonics", "degree": 4})
        self.mlp_base = tcnn.NetworkWithInputEncoding(
            n_input_dims=3,
            n_output_dims=1 + geo_feat_dim,
            encoding_config={
                "otype": "HashGrid",
                "n_levels": n_levels,
                "n_features_per_level": 2,
                "log2_hashmap_size": log2_hashmap_size,
                "base_resolution": base_resolution,
                "per_level_scale": per_level_scale,
            },
            network_config={
                "otype": "FullyFusedMLP",
                "activation": "ReLU",
                "output_activation": "None",
                "n_neurons": 64,
                "n_hidden_layers": 1,
            },
        )
        self.mlp_head = tcnn.Network(
            n_input_dims=self.direction_encoding.n_output_dims + geo_feat_dim,
            n_output_dims=3,
            network_config={
                "otype": "FullyFusedMLP",
                "activation": "ReLU",
                "output_activation": "Sigmoid",
                "n_neurons": 64,
                "n_hidden_layers": 2,
            },
        )

    def _normalised(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.aabb[:3], self.aabb[3:]
        x = (x - low) / (high - low)
        inside = ((x > 0) & (x < 1)).all(dim=-1)
        return x, inside

    def query_density(self, x: torch.Tensor, return_feat: bool = False):
        x, inside = self._normalised(x)
        h = self.mlp_base(x.reshape(-1, 3)).reshape(*x.shape[:-1], 1 + self.geo_feat_dim).to(x)
        density_before_activation, geo_feat = torch.split(h, [1, self.geo_feat_dim], dim=-1)
        density = trunc_exp(density_before_activation - 1) * inside[..., None]
        return (density, geo_feat) if return_feat else density

    def _query_rgb(self, directions: torch.Tensor, geo_feat: torch.Tensor) -> torch.Tensor:
        d = self.direction_encoding(((directions + 1) / 2).reshape(-1, 3))  # tcnn's SH wants [0, 1]
        h = torch.cat((d.to(geo_feat), geo_feat.reshape(-1, self.geo_feat_dim)), dim=-1)
        return self.mlp_head(h).reshape(*geo_feat.shape[:-1], 3).to(geo_feat)

    def forward(self, positions: torch.Tensor, directions: torch.Tensor):
        density, geo_feat = self.query_density(positions, return_feat=True)
        return self._query_rgb(directions, geo_feat), density
