"""Small building blocks shared by the model's networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2)


class ConvBlock(nn.Sequential):
    """conv -> SiLU -> conv -> SiLU; the first conv may downsample."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(conv(cin, cout, 3, stride), nn.SiLU(), conv(cout, cout), nn.SiLU())


class MLP(nn.Sequential):
    def __init__(self, cin: int, hidden: int, cout: int, layers: int = 2):
        mods = []
        width = cin
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        mods.append(nn.Linear(width, cout))
        super().__init__(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = activate(layer, x)
        return x


def activate(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, a SiLU applied in place: x is then a linear layer's fresh output,
    which its backward does not read, and on a CPU a new buffer per layer costs as much
    as the activation."""
    return F.silu(x, inplace=True) if isinstance(layer, nn.SiLU) else layer(x)


def positional_grid(height: int, width: int, device=None) -> torch.Tensor:
    """(H*W, 4) sin/cos of pixel coordinates in [-1, 1]: where a token came from."""
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    g = torch.stack([x, y], -1).reshape(-1, 2) * torch.pi / 2
    return torch.cat([g.sin(), g.cos()], -1)
