"""The mouth's interior: what an open mouth shows (teeth under the upper lip and above the
lower one, the dark throat between), in two parts shared by every face. The radiance field
colours the cavity from a coarse grid over the head's box (its colour where the ray looks
in); at the output's resolution a small painter adds what the field's resolution cannot
hold, teeth a pixel or two high, from the shape of the opening."""

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
PAINTER_WIDTH, PAINTER_KERNEL, PAINTER_LAYERS = 16, 5, 3
# Pixels around an opening the painter reads: its receptive field's radius.
PAINTER_REACH = PAINTER_LAYERS * (PAINTER_KERNEL // 2)


class MouthInterior(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = cfg.interior_resolution
        self.cells = nn.Parameter(torch.zeros(1, 3, n, n, n))
        layers, width = [], 4
        for i in range(PAINTER_LAYERS):
            last = i == PAINTER_LAYERS - 1
            layers.append(nn.Conv2d(width, 3 if last else PAINTER_WIDTH, PAINTER_KERNEL, padding=PAINTER_KERNEL // 2))
            if not last:
                layers.append(nn.SiLU())
            width = PAINTER_WIDTH
        self.painter = nn.Sequential(*layers)
        nn.init.zeros_(self.painter[-1].weight)  # it starts by adding nothing
        nn.init.zeros_(self.painter[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., 3) points in the head's box [-1, 1]^3 -> (..., 3) the cavity's colours
        there, in (0, 1). Looked up where the point is seen, not where the deformation takes
        it: the interior is not in the closed-mouth source the canonical space comes from."""
        points = x.reshape(-1, 3).to(self.cells.dtype)
        n = points.shape[0]
        # PyTorch's CPU grid_sample runs one thread per batch entry: the points are split
        # into as many entries as there are threads (padded to equal parts) to use them all.
        parts = max(1, min(torch.get_num_threads(), n)) if points.device.type == "cpu" else 1
        size = -(-n // parts)
        grid = F.pad(points, (0, 0, 0, parts * size - n)).view(parts, 1, 1, size, 3)
        cells = self.cells.expand(parts, -1, -1, -1, -1)
        logits = F.grid_sample(cells, grid, mode="bilinear", padding_mode="border", align_corners=False)
        logits = logits.view(parts, 3, size).permute(0, 2, 1).reshape(-1, 3)[:n]
        return torch.sigmoid(INITIAL_LOGIT + GAIN * logits).reshape(*x.shape[:-1], 3)

    def paint(self, colour: torch.Tensor, opened: torch.Tensor) -> torch.Tensor:
        """colour (F, 3, R, R) the field's colour image at the output's resolution, opened
        (F, 1, R, R) in [0, 1] where the mouth is open -> the interior to show there, the
        colour with the painter's detail added. Painted only in a box around each frame's
        opening (a mouth is a small part of a frame), the rest left as it is."""
        painted = colour.clone()
        size = colour.shape[-1]
        for f in range(colour.shape[0]):
            rows = torch.nonzero(opened[f, 0].amax(1) > 0).squeeze(1)
            if rows.numel() == 0:
                continue
            cols = torch.nonzero(opened[f, 0].amax(0) > 0).squeeze(1)
            y0, y1 = max(0, int(rows[0]) - PAINTER_REACH), min(size, int(rows[-1]) + 1 + PAINTER_REACH)
            x0, x1 = max(0, int(cols[0]) - PAINTER_REACH), min(size, int(cols[-1]) + 1 + PAINTER_REACH)
            crop = torch.cat([colour[f : f + 1, :, y0:y1, x0:x1], opened[f : f + 1, :, y0:y1, x0:x1]], 1)
            detail = self.painter(crop.to(self.cells.dtype)).to(colour.dtype)
            painted[f : f + 1, :, y0:y1, x0:x1] = (colour[f : f + 1, :, y0:y1, x0:x1] + detail).clamp(0, 1)
        return painted
