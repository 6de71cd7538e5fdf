"""One encoded identity: what per-frame rendering reuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .appearance import SourceFeatures


@dataclass
class FrontalPhoto:
    """A turned photo that the model sees from a frontal camera (``S3DNeRF.prepare_source``'s
    ``frontal``): the model's source is the photo seen from there, and what it paints is
    taken back into the photo itself (``photo_view.back_into_photo``)."""

    image: torch.Tensor  # (B, 3, R, R) the photo itself
    limit: Optional[torch.Tensor]  # (B, 1, R, R) the jaw's reach of the photo's own lips; None: no lip labels
    shift: torch.Tensor  # (B, g, g, 2) where each photo pixel lands in the frontal image (``landing_shift``)


@dataclass
class Source:
    """One encoded identity (or a batch of B): everything per-frame rendering reuses."""

    features: SourceFeatures
    slots: torch.Tensor  # (B, S, D) region slots
    slot_attention: torch.Tensor  # (B, S, M) which source tokens each slot took
    image: torch.Tensor  # (B, 3, R, R) the unmasked source, conditions super-resolution
    background: torch.Tensor  # (B, 3, r, r) the source's background (head masked out) at NeRF resolution
    camera: Optional[tuple] = None  # (c2w (B, 4, 4), K (B, 3, 3)) of the source, when known: reprojection
    # (B, 1, R, R) in [0, 1]: the source's lips and mouth, grown by the jaw's reach
    # (``mouth_keep_out``), where super-resolution may not copy the source. None: no lip
    # labels, or the option is off.
    keep_out: Optional[torch.Tensor] = None
    # Show the source itself (seen from each frame's camera) wherever the speech does not
    # move the face, and the model's frame only where it does (``mouth.speech_region``).
    # For photos: what the speech does not move is the person, not a learned face.
    keep_photo: bool = False
    # (B, 1, R, R) in [0, 1]: where the speech can move the face at all (the source's lips
    # grown by the jaw's reach, ``mouth.SPEECH_REACH``); None: no lip labels, no limit.
    speech_limit: Optional[torch.Tensor] = None
    # (B, 1, r, r): the cavity share the model renders for this source at rest (silent
    # speech, its own camera). A kept photo shows the model's frame only where the speech
    # opens the mouth beyond it: a photo whose mouth is already open stays the photo when
    # silent. None: measured from a closed mouth (zero).
    rest_share: Optional[torch.Tensor] = None
    # The photo's own geometry (``photo_view.py``): head-space points (B, 3, g, g) of its
    # pixels and how much each moves with the head (B, 1, g, g). When given, frames are
    # rendered at the source camera and turned to theirs through it, not through the
    # radiance field's depth.
    photo_points: Optional[torch.Tensor] = None
    photo_anchor: Optional[torch.Tensor] = None
    # (B, 2) the centre (x, y) of the photo's lips and mouth (labels >= 2) in pixels of the
    # input resolution, where a kept photo's speech belongs (``register_mouth``); None: not
    # a kept photo, or no lip labels.
    lips_centre: Optional[torch.Tensor] = None
    # (2,) how far (x, y, pixels of the input resolution) ``register_mouth`` moved the
    # source camera's principal point to put the model's mouth on the photo's lips.
    mouth_shift: Optional[torch.Tensor] = None
    # A turned photo rendered at a frontal camera: everything above describes the photo seen
    # from there (``camera`` is the frontal camera), except ``photo_points`` and
    # ``photo_anchor``, the photo's own geometry, which turn the finished frame.
    frontal: Optional[FrontalPhoto] = None
