"""The source image seen from each rendered frame's camera.

Super-resolution blends in the full-resolution source, which is in the source camera's
view: from any other view (a turned head, a free-view orbit) its texture sits in the
wrong place and ghosts. Each rendered pixel's surface point (ray origin + direction x
rendered depth) is projected into the source camera instead, and the source is sampled
there, so the blended texture lands on the rendered head. From the source's own camera
the surface points project back to their own pixels: the image is unchanged.

Pixels with no rendered surface (opacity below one half) keep the source pixel at their
own position, as without reprojection. Filling the source's head region there with the
surrounding background instead was tried and measured worse (held-out PSNR 23.8 -> 22.2
dB): the radiance field's opacity is below one half on parts of the head, such as hat
brims and hair edges, which the source shows correctly. Rendering and evaluation
reproject; training does only with ``train.reproject_source`` (off in ``small``:
docs/experiments.md, "Reprojection and the mouth keep-out").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SURFACE_OPACITY = 0.5  # below this a pixel has no reliable surface: it keeps the source pixel


def reproject_source(
    image: torch.Tensor,
    src_c2w: torch.Tensor,
    src_K: torch.Tensor,
    origins: torch.Tensor,
    directions: torch.Tensor,
    depth: torch.Tensor,
    opacity: torch.Tensor,
    frames_per_source: int,
) -> torch.Tensor:
    """image (B, C, R, R) source images (extra channels, such as a mask, move with them);
    src_c2w (B, 4, 4) camera-to-head (OpenCV) and src_K (B, 3, 3) in pixels of R;
    origins, directions (F, r*r, 3) of the rendered rays (F = B * frames_per_source);
    depth (F, r*r) the composited depth (weighted sum of sample distances, not divided by
    opacity); opacity (F, r*r).

    Returns (F, C, R, R): the source sampled where each frame's surface points appear in it.
    """
    Fn, n = depth.shape
    r = int(round(n**0.5))
    R = image.shape[-1]
    c2w = src_c2w.repeat_interleave(frames_per_source, 0)
    K = src_K.repeat_interleave(frames_per_source, 0)
    distance = depth / opacity.clamp(min=1e-6)
    points = origins + directions * distance[..., None]
    projected, in_front = project(points, c2w, K, R)
    own = pixel_grid(r, depth).reshape(1, n, 2)
    surface = (opacity > SURFACE_OPACITY) & in_front
    shift = torch.where(surface[..., None], projected - own, torch.zeros_like(projected)).view(Fn, r, r, 2)
    return sample_shifted(image.repeat_interleave(frames_per_source, 0), shift)


def project(points: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, size: int):
    """points (F, n, 3) in head space seen by cameras c2w (F, 4, 4), K (F, 3, 3) in pixels
    of ``size`` -> their grid_sample coordinates (F, n, 2) (x, y; align_corners=False) and
    (F, n) bool: in front of the camera."""
    rot, centre = c2w[:, :3, :3], c2w[:, None, :3, 3]
    cam = torch.einsum("fnk,fkc->fnc", points - centre, rot)  # head -> camera: R^T (p - c)
    z = cam[..., 2].clamp(min=1e-6)
    u = K[:, None, 0, 0] * cam[..., 0] / z + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * cam[..., 1] / z + K[:, None, 1, 2]
    return torch.stack([u, v], -1) / size * 2 - 1, cam[..., 2] > 1e-3


def sample_shifted(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """images (F, C, R, R) sampled at each pixel's own position plus ``shift`` (F, g, g, 2),
    grid_sample units at any g. The shift is upsampled, not absolute positions: zero stays
    zero up to the image border, where interpolating absolute positions would clamp them."""
    R = images.shape[-1]
    if shift.shape[1] != R:
        # Made channels first: PyTorch's channels-last upsampling is slow for two channels.
        shift = shift.permute(0, 3, 1, 2).contiguous()
        shift = F.interpolate(shift, size=(R, R), mode="bilinear", align_corners=False)
        shift = shift.permute(0, 2, 3, 1)
    grid = pixel_grid(R, shift)[None] + shift
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def pixel_grid(size: int, like: torch.Tensor) -> torch.Tensor:
    """(size, size, 2) grid_sample coordinates (x, y) of the pixel centres."""
    ticks = (torch.arange(size, device=like.device, dtype=like.dtype) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx, gy], -1)
