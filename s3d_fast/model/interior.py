"""The mouth's interior: what an open mouth shows where the ray looks in (teeth under the
upper lip, the tongue below, the dark throat between), one coarse colour grid over the
head's box shared by every face, as SynthTalk's heads share their teeth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig

# Colour logits start at the learned cavity's initial dark colour (sigmoid(-3) = 0.05), so a
# model grown by ``mouth_interior`` renders what it rendered before until it is trained.
INITIAL_LOGIT = -3.0
# The grid's logits are this multiple of its parameters: a cell is seen by few rays, and at
# the networks' learning rate teeth (a logit change of about 4) would take thousands of steps.
GAIN = 30.0


class MouthInterior(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = cfg.interior_resolution
        self.cells = nn.Parameter(torch.zeros(1, 3, n, n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., 3) points in the head's box [-1, 1]^3 -> (..., 3) colours in (0, 1).

        Looked up where the point is seen, not where the deformation takes it: the
        interior is not in the closed-mouth source the canonical space comes from."""
        grid = x.reshape(1, 1, 1, -1, 3).to(self.cells.dtype)
        cells = F.grid_sample(self.cells, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return torch.sigmoid(INITIAL_LOGIT + GAIN * cells.view(3, -1).t()).reshape(*x.shape[:-1], 3)
