"""Image operations on the mouth: where super-resolution may not copy the source, and the
opening cut where the rendered mouth cavity says the ray looks into the mouth."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

# ``cavity_opening``: the rendered cavity share at which the source starts to darken, and
# at which it is black. Rendered at NeRF resolution and upsampled, the share is blurred at
# the interior's edge, and the closed-mouth floor lies below the first threshold
# (docs/experiments.md, "The cavity opening").
OPENING_FROM, OPENING_FULL = 0.1, 0.5
# ``keep_photo``: how far from the source's lips (a share of the image, downwards; a third
# of it up and sideways) the speech can move a face: the jaw's reach. An opening the model
# renders beyond it (under the chin, on a collar) is not the mouth and is not shown.
SPEECH_REACH = 0.15


def mouth_keep_out(mask: Optional[torch.Tensor], like: torch.Tensor, reach: float) -> Optional[torch.Tensor]:
    """(B, R, R) labels -> (B, 1, R, R) in [0, 1]: where super-resolution may not copy the
    source. The lips and mouth (labels >= 2) grown down by ``reach`` of the image, how far
    the jaw drops, and by a third of that up and sideways, with edges softened over the
    same third so the painted region leaves no seam. None when ``reach`` is 0, there is no
    mask, or it has no lip labels."""
    if reach <= 0 or mask is None or not bool((mask >= 2).any()):
        return None
    size = mask.shape[-1]
    down = max(1, round(reach * size))
    side = max(1, round(reach * size / 3))
    lips = (mask >= 2).to(like.dtype).unsqueeze(1)
    # Output row y takes input rows y - down .. y + side: lips up to ``down`` above a pixel
    # (the jaw's reach below the mouth) or up to ``side`` below it.
    grown = F.max_pool2d(F.pad(lips, (side, side, down, side)), (down + side + 1, 2 * side + 1), stride=1)
    return F.avg_pool2d(grown, 2 * side + 1, stride=1, padding=side, count_include_pad=False)


def lips_centre(mask: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
    """(B, R, R) labels -> (B, 2) the centre (x, y) of the lips and mouth (labels >= 2) in
    pixels, ``like``'s dtype; None when there is no mask or a source has no lip labels."""
    if mask is None:
        return None
    lips = (mask >= 2).to(like.dtype)
    if not bool((lips.sum((1, 2)) > 0).all()):
        return None
    return weighted_centre(lips)


def weighted_centre(weight: torch.Tensor) -> torch.Tensor:
    """(..., H, W) non-negative weights, not all zero -> (..., 2) their centre (x, y) in
    pixels, pixel i covering [i, i + 1)."""
    total = weight.sum((-2, -1))
    xs = torch.arange(weight.shape[-1], device=weight.device, dtype=weight.dtype) + 0.5
    ys = torch.arange(weight.shape[-2], device=weight.device, dtype=weight.dtype) + 0.5
    x = (weight.sum(-2) * xs).sum(-1) / total
    y = (weight.sum(-1) * ys).sum(-1) / total
    return torch.stack([x, y], -1)


def opening_centre(opened: torch.Tensor, least: float = 0.25) -> Optional[torch.Tensor]:
    """(r, r) how open the mouth is, summed over frames -> (2,) the centre (x, y) of its
    largest opening in pixels of r, or None when nothing opens. The opening is the part
    over ``least`` of the peak connected to the peak: a model can open a stray spot far from
    the mouth as well (on a chin), which must not pull the centre off it."""
    peak = opened.max()
    if not bool(peak > 0):
        return None
    over = (opened >= least * peak).to(opened.dtype)[None, None]
    blob = torch.zeros_like(over).view(-1)
    blob[int(opened.argmax())] = 1
    blob = blob.view_as(over)
    while True:  # grow from the peak through the pixels over the threshold
        grown = F.max_pool2d(blob, 3, stride=1, padding=1) * over
        if bool(torch.equal(grown, blob)):
            break
        blob = grown
    return weighted_centre(opened * blob[0, 0])


def open_mouth(images: torch.Tensor, share: torch.Tensor, interior: Optional[torch.Tensor] = None) -> torch.Tensor:
    """images (F, 3, R, R), share (F, 1, r, r) the rendered cavity share -> the images
    opened where the share says the ray looks into the mouth (``cavity_opening``): cut
    into the source super-resolution is conditioned on and blends in, and into the frame
    it paints. The opening shows ``interior`` (F, 3, r', r'), the field's colour image
    with the mouth's interior (``mouth_interior``), or else black: an unlit mouth."""
    return show_opening(images, opened_share(share.to(images.dtype), images.shape[-2:]), interior)


def show_opening(images: torch.Tensor, opened: torch.Tensor, interior: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`open_mouth` by ``opened`` (F, 1, R, R) from :func:`opened_share`, already at the
    images' resolution; ``interior`` is upsampled to it when it is not."""
    if interior is None:
        return images * (1 - opened)
    if interior.shape[-2:] != images.shape[-2:]:
        interior = F.interpolate(
            interior.to(images.dtype), size=images.shape[-2:], mode="bilinear", align_corners=False
        )
    return torch.lerp(images, interior.to(images.dtype), opened)


def opened_share(share: torch.Tensor, size) -> torch.Tensor:
    """(F, 1, r, r) rendered cavity share -> (F, 1, H, W) (``size``) in [0, 1]: how open the
    mouth is at each pixel (:func:`opening_ramp` of the upsampled share)."""
    return opening_ramp(F.interpolate(share, size=tuple(size), mode="bilinear", align_corners=False))


def opening_ramp(share: torch.Tensor) -> torch.Tensor:
    """The cavity share -> how open the mouth is, in [0, 1]: closed at ``OPENING_FROM``, open
    at ``OPENING_FULL``."""
    return ((share - OPENING_FROM) / (OPENING_FULL - OPENING_FROM)).clamp(0, 1)


def speech_region(share: torch.Tensor, size: int) -> torch.Tensor:
    """(F, 1, r, r) rendered cavity share -> (F, 1, size, size) in [0, 1]: where this frame's
    speech moves the face, which the model paints; elsewhere a kept photo shows through.

    The opening itself, grown by the lips around it (a twelfth of the image sideways and
    up) and the jaw below it (a sixth down), with edges softened over the same twelfth so
    the painted region leaves no seam. A closed mouth (share below ``OPENING_FROM``) gives
    an empty region: silent speech shows the photo unchanged."""
    r = share.shape[-1]
    side = max(1, round(r / 24))
    down = max(1, round(r / 12))
    opened = opening_ramp(share)
    # Output row y takes input rows y - down .. y + side: an opening up to ``down`` above a
    # pixel (the jaw below the mouth) or up to ``side`` below it (the upper lip).
    grown = F.max_pool2d(F.pad(opened, (side, side, down, side)), (down + side + 1, 2 * side + 1), stride=1)
    soft = F.avg_pool2d(grown, 2 * side + 1, stride=1, padding=side, count_include_pad=False)
    return F.interpolate(soft, size=(size, size), mode="bilinear", align_corners=False)


def keep_photo_outside_speech(
    rgb, photo, share, rest_share=None, limit=None, frames_per_source: int = 1
) -> torch.Tensor:
    """The model's frames ``rgb`` (F, 3, Ro, Ro) only where the speech moves the face, the
    ``photo`` (F, 3, R, R) as each frame sees it everywhere else (:func:`painted_region`)."""
    size = rgb.shape[-1]
    region = painted_region(share, rest_share, limit, size, frames_per_source)
    if photo.shape[-1] != size:
        photo = F.interpolate(photo, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return region * rgb + (1 - region) * photo


def painted_region(share, rest_share, limit, size: int, frames_per_source: int = 1) -> torch.Tensor:
    """(F, 1, size, size) in [0, 1]: where a kept photo shows the model's frame. The rendered
    cavity share (F, 1, r, r) above the share at rest (B, 1, r, r) when known, as
    :func:`speech_region`, within ``limit`` (B, 1, R, R), the jaw's reach from the lips."""
    T = frames_per_source
    moved = share if rest_share is None else share - rest_share.repeat_interleave(T, 0)
    region = speech_region(moved, size)
    if limit is not None:
        limit = F.interpolate(limit, size=(size, size), mode="bilinear", align_corners=False)
        region = region * limit.repeat_interleave(T, 0)
    return region


def face_mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """(B, H, W) label map -> (B, 1, H, W) float, 1 on face, lips and mouth."""
    if mask is None:
        return torch.ones_like(like[:, :1])
    return (mask > 0).to(like.dtype).unsqueeze(1)
