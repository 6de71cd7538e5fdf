"""A photo seen from another camera through its own geometry (``Source.photo_points``).

Each geometry sample (a pixel of the photo) is projected into the frame's camera; the
displacement from where it was, weighted by its anchor (1 on the person, 0 on a
background that stays put), is a forward map from the photo to the frame. Its inverse,
which the frame needs (for each frame pixel, where in the photo to read), is found by
fixed-point iteration q <- p - displacement(q): the displacement is smooth (the anchor's
border is soft), so a few steps converge. From the photo's own camera every displacement
is zero: the photo comes back unchanged.

The forward map itself takes an image made in that camera's view back into the photo
(``back_into_photo``): each photo pixel reads the view where it landed, a direct gather.
A photo seen from a camera and taken back returns itself wherever it was visible.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from .reproject import pixel_grid, project, sample_shifted
from .source import FrontalPhoto

ITERATIONS = 12
DAMPING = 0.5
SPLAT_DENSITY = 3  # photo samples per pixel side splatted by ``photo_from_camera``
_FOOTPRINT = ((0, 0), (1, 0), (0, 1), (1, 1))  # the pixels each splatted sample covers
_BEHIND = 1e3  # head units: a pixel that does not move with the head is behind every one that does
_FILL_RINGS = 64  # pixels nothing lands on are filled from this far at most
_MIRROR_MARGIN = 0.1  # head units: the mirrored face shows where the photo's sample lies this far behind it
_MIDLINE_MARGIN = 0.03  # head units: the photo's own face this far past the midline (its nose) is kept


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
    g = points.shape[-1]
    moved = landing_shift(points, anchor, c2w, K, image.shape[-1], T)  # (F, g, g, 2): photo pixel -> frame pixel
    moved_ch = moved.permute(0, 3, 1, 2)
    own = pixel_grid(g, points)  # (g, g, 2) grid_sample coordinates
    source = own.expand(Fn, g, g, 2)
    for _ in range(iterations):
        at = F.grid_sample(moved_ch, source, mode="bilinear", padding_mode="border", align_corners=False)
        source = source + DAMPING * (own - at.permute(0, 2, 3, 1) - source)
    per_frame = image if image.shape[0] == Fn else image.repeat_interleave(T, 0)
    return sample_shifted(per_frame, source - own)  # where each frame pixel reads, relative to itself


def landing_shift(
    points: torch.Tensor, anchor: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, size: int, frames_per_source: int
) -> torch.Tensor:
    """(F, g, g, 2) in grid_sample units: how far each photo pixel moves in the image of each
    camera c2w (F, 4, 4), K (F, 3, 3) in pixels of ``size``, weighted by how much it moves
    with the head (``anchor``); points (B, 3, g, g), anchor (B, 1, g, g)."""
    T = frames_per_source
    Fn = c2w.shape[0]
    g = points.shape[-1]
    p = points.repeat_interleave(T, 0).flatten(2).transpose(1, 2)  # (F, g*g, 3)
    projected, in_front = project(p, c2w, K, size)
    landed = projected.view(Fn, g, g, 2)
    weight = anchor.repeat_interleave(T, 0) * in_front.view(Fn, 1, g, g).to(anchor.dtype)
    return (landed - pixel_grid(g, points)) * weight.permute(0, 2, 3, 1)


def back_into_photo(view: torch.Tensor, shift: torch.Tensor, frames_per_source: int) -> torch.Tensor:
    """view (F, C, R, R) images made in a camera's view -> (F, C, R, R) in the photo's view:
    each photo pixel reads the view where it landed; ``shift`` (B, g, g, 2) is
    :func:`landing_shift` for that camera (F = B * frames_per_source)."""
    return sample_shifted(view, shift.repeat_interleave(frames_per_source, 0))


def paint_into_photo(rgb: torch.Tensor, region: torch.Tensor, frontal: FrontalPhoto, frames_per_source: int):
    """Frames rendered at a turned photo's frontal camera, rgb (F, 3, Ro, Ro), shown where
    ``region`` (F, 1, Ro, Ro) says, taken back into the photo: (F, 3, Ro, Ro), the photo
    itself wherever nothing is painted. What lands outside the jaw's reach of the photo's own
    lips (``frontal.limit``) is not shown."""
    T, size = frames_per_source, rgb.shape[-1]
    back = back_into_photo(torch.cat([rgb, region], 1), frontal.shift, T)
    shown = back[:, 3:]
    if frontal.limit is not None:
        limit = F.interpolate(frontal.limit, size=(size, size), mode="bilinear", align_corners=False)
        shown = shown * limit.repeat_interleave(T, 0)
    photo = frontal.image
    if photo.shape[-1] != size:
        photo = F.interpolate(photo, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return shown * back[:, :3] + (1 - shown) * photo.repeat_interleave(T, 0)


def photo_from_camera(
    image: torch.Tensor,
    points: torch.Tensor,
    anchor: torch.Tensor,
    c2w: torch.Tensor,
    K: torch.Tensor,
    mirror: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
) -> torch.Tensor:
    """image (B, C, R, R) seen from cameras c2w (B, 4, 4), K (B, 3, 3) in pixels of R, far
    from its own, through its geometry (points (B, 3, g, g), anchor (B, 1, g, g)): (B, C, R, R).

    ``photo_in_view``'s fixed-point inverse diverges where a large turn stretches the photo
    more than threefold (the far side of a turned face) and has no notion of what hides
    what. Here each photo pixel, at ``SPLAT_DENSITY`` samples a side, is splatted where it
    lands (``landing_shift``'s map), the nearest to the camera kept (the background, which
    does not move with the head, behind the person); the pixels nothing lands on take the
    mean of their filled neighbours' positions, ring by ring. For a view made once per photo:
    per frame, ``photo_in_view`` is cheaper and exact for small turns.

    ``mirror``: (plane (B, 4), region (B, 1, R, R)), the face's plane of symmetry in head
    space, its normal towards the half the photo's camera sees (``photo_geometry.
    symmetry_plane``), and the photo's face: the far half of a face turned from the camera
    is shown as its near half mirrored (``_with_mirror``)."""
    B, C, R, _ = image.shape
    S = R * SPLAT_DENSITY
    dense = F.interpolate(points, size=(S, S), mode="bilinear", align_corners=False)
    weight = F.interpolate(anchor, size=(S, S), mode="bilinear", align_corners=False).flatten(1)
    own = pixel_grid(S, points).reshape(1, -1, 2).expand(B, -1, 2)
    p = dense.flatten(2).transpose(1, 2)  # (B, S*S, 3)
    if mirror is None:
        seen = _splat(p, weight, own, c2w, K, R, S)
    else:
        seen = _with_mirror(p, weight, own, c2w, K, R, S, *mirror)
    reads, filled = seen.reads, seen.filled.to(image.dtype)
    for _ in range(_FILL_RINGS):
        if bool(filled.min() > 0):
            break
        total = F.avg_pool2d(reads * filled, 3, stride=1, padding=1)
        count = F.avg_pool2d(filled, 3, stride=1, padding=1)
        grow = (filled == 0) & (count > 0)
        reads = torch.where(grow, total / count.clamp(min=1e-12), reads)
        filled = torch.where(grow, torch.ones_like(filled), filled)
    # Beyond the rings (never, short of a torn-off photo): the pixel's own position.
    reads = torch.where(filled > 0, reads, pixel_grid(R, points).permute(2, 0, 1)[None])
    return F.grid_sample(image, reads.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False)


def _with_mirror(p, weight, own, c2w, K, R: int, S: int, plane, region) -> _Splat:
    """``_splat`` of the photo, and of its face mirrored about ``plane``: the mirrored face
    wherever the photo shows only what lies behind it, or the far half of the face (the half
    turned from the photo's camera, beyond ``_MIDLINE_MARGIN``), which the photo shows
    squeezed, folded behind the nose, or not at all."""
    normal, offset = plane[:, None, :3], plane[:, None, 3]
    side = (p * normal).sum(-1) - offset  # (B, S*S) signed distance from the plane, > 0: the near half
    seen = _splat(p, weight, own, c2w, K, R, S, value=side)
    face = F.interpolate(region.to(p.dtype), size=(S, S), mode="nearest").flatten(1) > 0.5
    reflected = p - 2 * side[..., None] * normal
    mirrored = _splat(reflected, face.to(p.dtype), own, c2w, K, R, S, only=face, value=-side)
    behind = seen.key > mirrored.key + _MIRROR_MARGIN
    far = seen.value < -_MIDLINE_MARGIN
    take = mirrored.filled & (behind | far)
    return _Splat(
        torch.where(take, mirrored.reads, seen.reads),
        seen.filled | take,
        torch.where(take, mirrored.key, seen.key),
        torch.where(take, mirrored.value, seen.value),
    )


@dataclasses.dataclass
class _Splat:
    reads: torch.Tensor  # (B, 2, R, R) where in the photo each pixel reads
    filled: torch.Tensor  # (B, 1, R, R) bool: a sample landed there
    key: torch.Tensor  # (B, 1, R, R) the depth of the sample kept (inf where none)
    value: torch.Tensor  # (B, 1, R, R) the ``value`` of the sample kept


def _splat(p, weight, own, c2w, K, R: int, S: int, only=None, value=None) -> _Splat:
    """Samples at head-space points p (B, S*S, 3), read from the photo at ``own`` (B, S*S, 2),
    moving with the head by ``weight`` (B, S*S), splatted into cameras c2w, K at R^2,
    the nearest kept; ``only`` (B, S*S) bool: the samples splatted (default all); ``value``
    (B, S*S): carried to the pixels each sample is kept in (default zeros)."""
    B = p.shape[0]
    projected, in_front = project(p, c2w, K, R)
    weight = weight * in_front.to(weight.dtype)
    landed = own + (projected - own) * weight[..., None]
    value = weight.new_zeros(weight.shape) if value is None else value
    depth = torch.einsum("bnk,bk->bn", p - c2w[:, None, :3, 3], c2w[:, :3, 2])  # along the camera's axis
    key = depth + (1 - weight) * _BEHIND
    pixel = ((landed + 1) * (R / 2)).floor().long()
    # Each sample covers its pixel and the next one right and down: a turn stretches the
    # photo's samples apart, and what lies behind must not show between them.
    pixel = torch.cat([pixel + pixel.new_tensor(step) for step in _FOOTPRINT], 1)
    n = len(_FOOTPRINT)
    key, own, value = key.repeat(1, n), own.repeat(1, n, 1), value.repeat(1, n)
    inside = ((pixel >= 0) & (pixel < R)).all(-1)
    if only is not None:
        inside &= only.repeat(1, n)
    batch = torch.arange(B, device=p.device)[:, None].expand_as(inside)
    target = (batch * R + pixel[..., 1].clamp(0, R - 1)) * R + pixel[..., 0].clamp(0, R - 1)
    target, key, own, value = target[inside], key[inside], own[inside], value[inside]
    nearest = key.new_full((B * R * R,), float("inf")).scatter_reduce(0, target, key, "amin")
    won = key <= nearest[target]
    reads = own.new_zeros(B * R * R, 2).index_put_((target[won],), own[won])
    kept = value.new_zeros(B * R * R).index_put_((target[won],), value[won])
    filled = torch.isfinite(nearest)
    return _Splat(
        reads.view(B, R, R, 2).permute(0, 3, 1, 2),
        filled.view(B, 1, R, R),
        nearest.view(B, 1, R, R),
        kept.view(B, 1, R, R),
    )
