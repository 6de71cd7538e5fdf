"""A photo seen from another camera through its own geometry (``Source.photo_points``).

Each geometry sample (a pixel of the photo) is projected into the frame's camera; the
displacement from where it was, weighted by its anchor (1 on the person, 0 on a
background that stays put), is a forward map from the photo to the frame. Its inverse,
which the frame needs (for each frame pixel, where in the photo to read), is found by
fixed-point iteration q <- p - displacement(q): the displacement is smooth (the anchor's
border is soft), so a few steps converge. From the photo's own camera every displacement
is zero: the photo comes back unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .reproject import pixel_grid, project, sample_shifted

ITERATIONS = 12
DAMPING = 0.5


def photo_in_view(
    image: torch.Tensor,
    points: torch.Tensor,
    anchor: torch.Tensor,
    c2w: torch.Tensor,
    K: torch.Tensor,
    frames_per_source: int,
    iterations: int = ITERATIONS,
) -> torch.Tensor:
    """image (B, C, R, R), or (F, C, R, R) one per frame (extra channels, such as a mask, move
    with it); points (B, 3, g, g)
    head-space positions of the photo's pixels; anchor (B, 1, g, g); c2w (F, 4, 4)
    camera-to-head and K (F, 3, 3) in pixels of R of each frame (F = B * frames_per_source).
    Returns (F, C, R, R)."""
    T = frames_per_source
    Fn = c2w.shape[0]
    g, R = points.shape[-1], image.shape[-1]
    p = points.repeat_interleave(T, 0).flatten(2).transpose(1, 2)  # (F, g*g, 3)
    projected, in_front = project(p, c2w, K, R)
    own = pixel_grid(g, points)  # (g, g, 2) grid_sample coordinates
    landed = projected.view(Fn, g, g, 2)
    weight = anchor.repeat_interleave(T, 0) * in_front.view(Fn, 1, g, g).to(anchor.dtype)
    moved = (landed - own) * weight.permute(0, 2, 3, 1)  # (F, g, g, 2): photo pixel -> frame pixel
    moved_ch = moved.permute(0, 3, 1, 2)
    source = own.expand(Fn, g, g, 2)
    for _ in range(iterations):
        at = F.grid_sample(moved_ch, source, mode="bilinear", padding_mode="border", align_corners=False)
        source = source + DAMPING * (own - at.permute(0, 2, 3, 1) - source)
    per_frame = image if image.shape[0] == Fn else image.repeat_interleave(T, 0)
    return sample_shifted(per_frame, source - own)  # where each frame pixel reads, relative to itself
