"""Mouth landmarks that can be found both in ground truth and in a model's output.

Six points, (x, y) in pixels, in this order (:data:`MOUTH_POINTS`): the two mouth corners,
the outer edge of the upper and lower lip and the inner edge of the upper and lower lip
(the last four on the mouth's central column).

- **From a label map** (SynthTalk's ground-truth masks): the mouth is lips + interior
  (labels 2, 3), the opening is the interior (label 3).
- **From pixels** (any frame, ours included): inside a box around the mouth, the opening is
  :mod:`s3d_fast.metrics.mouth`'s rule (much darker than the skin, or bright grey teeth) and
  the lips are pixels whose green/red ratio is well below the skin's (SynthTalk's and real
  lips are red-shifted skin). The box must be mostly skin, hence :func:`landmark_box`'s wide
  margin. The rule's error on ground-truth frames (pixels vs masks) is the floor of the
  metric and is reported beside it.
- **On real data** (no exact masks): mediapipe's face mesh on both frames
  (:data:`MEDIAPIPE_MOUTH`, the same six points of its 478).

From a mouth segment: the corners are its leftmost / rightmost columns (at the mean row
of that column); the outer edges are its top and bottom within the central band (1/8 of
the mouth's width either side of the middle); the inner edges are the opening's top and
bottom in that band, or, with the lips closed, both at the middle of the outer edges.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from ..data.preprocess.landmarks import detect
from .mouth import _BRIGHT, _DARK, _GREY, _LUMA, _as_hwc_float, mouth_region

MOUTH_POINTS = ("left_corner", "right_corner", "upper_outer", "lower_outer", "upper_inner", "lower_inner")
# mediapipe face-mesh indices of the same six points (subject's right corner is image-left).
MEDIAPIPE_MOUTH = (61, 291, 0, 17, 13, 14)
_LIP_RATIO = 0.85  # lips: green/red below 0.85 x the box's median (the skin's)


def landmark_box(masks, pad: float = 0.6) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the clip's lips + mouth box grown by ``pad`` of its size per side,
    so that skin fills most of it (the pixel rule measures colours against the median)."""
    return mouth_region(masks, pad=pad)


def landmarks_from_segments(mouth: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """(T, 6, 2) landmarks from (T, H, W) bool mouth (lips + opening) and opening maps;
    NaN for a frame without mouth pixels."""
    mouth = np.asarray(mouth, bool)
    opening = np.asarray(opening, bool) & mouth
    out = np.full((mouth.shape[0], len(MOUTH_POINTS), 2), np.nan)
    for t in range(mouth.shape[0]):  # per frame: a handful of reductions on one mask
        ys, xs = np.nonzero(mouth[t])
        if ys.size == 0:
            continue
        xl, xr = xs.min(), xs.max()
        xc = 0.5 * (xl + xr)
        band = np.abs(xs - xc) <= max(1.0, (xr - xl) / 8.0)
        top, bottom = ys[band].min(), ys[band].max()
        oy, ox = np.nonzero(opening[t])
        in_band = np.abs(ox - xc) <= max(1.0, (xr - xl) / 8.0)
        if in_band.any():
            inner_top, inner_bottom = oy[in_band].min(), oy[in_band].max()
        else:
            inner_top = inner_bottom = 0.5 * (top + bottom)
        out[t] = [
            (xl, ys[xs == xl].mean()),
            (xr, ys[xs == xr].mean()),
            (xc, top),
            (xc, bottom),
            (xc, inner_top),
            (xc, inner_bottom),
        ]
    return out


def landmarks_from_masks(masks) -> np.ndarray:
    """(T, 6, 2) landmarks of (T, H, W) label maps (2 lips, 3 mouth interior)."""
    masks = np.asarray(masks)
    return landmarks_from_segments(np.isin(masks, (2, 3)), masks == 3)


def head_region(masks) -> np.ndarray:
    """(H, W) bool: pixels that are head (label > 0) in every frame of the clip. The pixel
    rule looks only there, so a background that happens to be red-shifted or dark (and
    whatever a model paints behind the head) never reads as a mouth."""
    return (np.asarray(masks) > 0).all(0)


def pixel_segments(
    frames,
    box: tuple[int, int, int, int],
    keep: Optional[np.ndarray] = None,
    core_box: Optional[tuple[int, int, int, int]] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(mouth, opening) (T, H, W) bool maps of frames by the pixel rule inside ``box``
    (and ``keep`` (H, W), e.g. :func:`head_region`); the mouth is the connected blob of
    lips + opening with most pixels inside ``core_box`` (default ``box``; pass the clip's
    tight lips box, :func:`s3d_fast.metrics.mouth.mouth_region`)."""
    f = _as_hwc_float(frames)
    t, h, w = f.shape[:3]
    y0, y1, x0, x1 = box
    crop = f[:, y0:y1, x0:x1]
    inside = np.ones((y1 - y0, x1 - x0), bool) if keep is None else np.asarray(keep, bool)[y0:y1, x0:x1]
    if not inside.any():
        raise ValueError("the landmark box holds no head pixel")
    luma = crop @ _LUMA
    sat = crop.max(-1) - crop.min(-1)
    med = np.median(luma[:, inside], axis=1)[:, None, None]
    opening = ((luma < _DARK * med) | ((luma > _BRIGHT * med) & (sat < _GREY))) & inside
    ratio = crop[..., 1] / np.maximum(crop[..., 0], 1e-3)
    skin = np.median(ratio[:, inside], axis=1)[:, None, None]
    mouth = ((ratio < _LIP_RATIO * skin) & inside) | opening
    # The mouth is the blob with most pixels in the clip's tight lips box (``core``):
    # dark hair or a shadow inside the wide box may be larger, but lies outside it.
    core = np.zeros_like(inside)
    cy0, cy1, cx0, cx1 = core_box if core_box is not None else (y0, y1, x0, x1)
    core[max(cy0 - y0, 0) : max(cy1 - y0, 0), max(cx0 - x0, 0) : max(cx1 - x0, 0)] = True
    for i in range(t):
        labels, n = ndimage.label(mouth[i])
        if n > 1:
            score = np.bincount(labels[core], minlength=n + 1)[1:]
            mouth[i] = labels == 1 + int(score.argmax())
    full_mouth = np.zeros((t, h, w), bool)
    full_open = np.zeros((t, h, w), bool)
    full_mouth[:, y0:y1, x0:x1] = mouth
    full_open[:, y0:y1, x0:x1] = opening & mouth
    return full_mouth, full_open


def landmarks_from_pixels(frames, masks) -> np.ndarray:
    """(T, 6, 2) landmarks of frames ((T, H, W, 3) uint8 / float, or a (T, 3, H, W) tensor)
    by the pixel rule; the clip's ground-truth ``masks`` (T, H, W) only place the boxes
    (:func:`landmark_box`, :func:`head_region`, the tight lips box)."""
    return landmarks_from_segments(
        *pixel_segments(frames, landmark_box(masks), head_region(masks), mouth_region(masks, pad=0.1))
    )


def landmarks_mediapipe(frames) -> np.ndarray:
    """(T, 6, 2) mediapipe face-mesh mouth landmarks (NaN where no face was found)."""
    f = _as_hwc_float(frames)
    lm, _ = detect(np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return lm[:, list(MEDIAPIPE_MOUTH), :2].astype(np.float64)


def landmark_distance(a: np.ndarray, b: np.ndarray, valid: Optional[np.ndarray] = None) -> tuple[float, int]:
    """Mean Euclidean distance (pixels) over points and frames where both are defined, and
    the number of frames used (NaN, 0 when none)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"landmarks must be two (T, P, 2) arrays of one shape, got {a.shape} and {b.shape}")
    ok = np.isfinite(a).all((1, 2)) & np.isfinite(b).all((1, 2))
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        return float("nan"), 0
    return float(np.linalg.norm(a[ok] - b[ok], axis=-1).mean()), int(ok.sum())
