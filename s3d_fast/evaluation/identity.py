"""Identity scores of a clip (dlib's face embedding, ``metrics/identity.py``): our frames
and the ground truth's, each against the one-shot source frame, so that the ground
truth's own distance (the same person talking) reads as the floor of ours."""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
import torch

from ..metrics.identity import face_embedding, identity_distance

IDENTITY_EVERY = 8  # every 8th frame is scored: dlib's network is the slow part


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8."""
    return (frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def identity_scores(
    source: np.ndarray,
    ours: torch.Tensor,
    gt: np.ndarray,
    view: Optional[torch.Tensor],
    view_gt: Optional[np.ndarray] = None,
) -> dict:
    """``identity_dist`` (ours), ``identity_dist_gt``, ``view_identity_dist`` (ours from the
    extra camera) and ``view_identity_dist_gt`` (the ground truth from that camera: the
    floor of ours there, where dlib may not find a turned face at all), ``identity_no_face``
    (our scored frames without a face); NaN throughout when dlib finds no face in the
    source. ``_source_embedding`` is kept for :func:`between_identities`."""
    ref = face_embedding(source)
    if ref is None:
        return dict.fromkeys(("identity_dist", "identity_dist_gt", "identity_no_face"), float("nan"))
    row = {"_source_embedding": ref}
    row["identity_dist"], row["identity_no_face"] = identity_distance(ref, to_uint8(ours[::IDENTITY_EVERY]))
    row["identity_dist_gt"], _ = identity_distance(ref, gt[::IDENTITY_EVERY])
    if view is not None:
        row["view_identity_dist"], _ = identity_distance(ref, to_uint8(view[::IDENTITY_EVERY]))
    if view_gt is not None:
        row["view_identity_dist_gt"], _ = identity_distance(ref, view_gt[::IDENTITY_EVERY])
    return row


def between_identities(rows: list[dict]) -> float:
    """Mean distance between the sources of different identities: what "another person"
    reads on this data set (NaN with fewer than two identities)."""
    first = {}
    for r in rows:
        if "_source_embedding" in r:
            first.setdefault(r["identity"], r["_source_embedding"])
    pairs = [float(np.linalg.norm(a - b)) for a, b in itertools.combinations(first.values(), 2)]
    return float(np.mean(pairs)) if pairs else float("nan")
