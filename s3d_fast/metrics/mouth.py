"""Mouth opening from pixels alone, and Pearson correlation.

A model's output frames carry no masks, so the opening is read from colour: inside a box
around the mouth, a pixel is "open mouth" when it is unlike the skin that fills most of
the box: much darker (the interior: throat, tongue in shadow), or much brighter and
unsaturated (teeth). Thresholds are relative to the box's median luma (the skin), so they
hold across skin tones and lighting. The opening is the mouth's HEIGHT: the mean count of
open pixels in the box's most-open 1/8 of columns, as a fraction of the box height. The
height follows the jaw; the open AREA also swells and shrinks with lip width and
rounding, so it tracks the jaw-opening viseme less well (docs/evaluation.md, "Metrics").

The box comes from the clip's ground-truth masks (:func:`mouth_region`: the lips and
mouth interior over the whole clip, padded) or, without masks, a default box in the
face-aligned crop (:data:`DEFAULT_MOUTH_BOX`, fractions of the frame, measured on SynthTalk).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

# (top, bottom, left, right) as fractions of the frame: where SynthTalk's aligned crops put
# the lips. Tight on purpose: a wider box takes in nostril and chin shadows, which the
# opening read from it follows instead of the jaw (docs/evaluation.md, "Metrics"); for other data, or
# whenever masks exist, pass mouth_region(masks).
DEFAULT_MOUTH_BOX = (0.61, 0.77, 0.36, 0.65)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_DARK = 0.3  # interior: luma below 0.3 x the box median
_BRIGHT = 1.2  # teeth: luma above 1.2 x the median ...
_GREY = 0.15  # ... and saturation (max - min of RGB) below this


def _as_hwc_float(frames) -> np.ndarray:
    """(T, H, W, 3) uint8 or float [0, 1] numpy, or (T, 3, H, W) float torch -> (T, H, W, 3) float32."""
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames as a tensor must be (T, 3, H, W), got {tuple(frames.shape)}")
        frames = frames.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) (or a (T, 3, H, W) tensor), got shape {frames.shape}")
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    if frames.dtype.kind != "f":
        raise TypeError(f"frames must be uint8 or float in [0, 1], got {frames.dtype}")
    return frames.astype(np.float32, copy=False)


def mouth_region(masks, pad: float = 0.1) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) pixel box around the lips and mouth interior (labels 2, 3) of a clip.

    ``masks`` (T, H, W) labels; the box is the union over frames, grown by ``pad`` of its
    size on every side and clipped to the frame.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (T, H, W) labels, got shape {masks.shape}")
    ys, xs = np.nonzero(np.isin(masks, (2, 3)).any(0))
    if ys.size == 0:
        raise ValueError("masks hold no lips or mouth pixels (labels 2, 3)")
    h, w = masks.shape[1:]
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    py, px = int(round(pad * (y1 - y0))), int(round(pad * (x1 - x0)))
    return max(0, y0 - py), min(h, y1 + py), max(0, x0 - px), min(w, x1 + px)


def default_region(height: int, width: int) -> tuple[int, int, int, int]:
    top, bottom, left, right = DEFAULT_MOUTH_BOX
    return int(round(top * height)), int(round(bottom * height)), int(round(left * width)), int(round(right * width))


def mouth_opening(frames, region: Optional[tuple[int, int, int, int]] = None) -> np.ndarray:
    """(T,) height of the open mouth as a fraction of the box height, per frame (see above).

    ``frames``: (T, H, W, 3) uint8 / float in [0, 1], or a (T, 3, H, W) float tensor.
    ``region``: (y0, y1, x0, x1) pixels (:func:`mouth_region`), default :data:`DEFAULT_MOUTH_BOX`.
    Each frame is measured alone, so a repeated frame gives a constant.
    """
    f = _as_hwc_float(frames)
    h, w = f.shape[1:3]
    y0, y1, x0, x1 = region if region is not None else default_region(h, w)
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise ValueError(f"region {region} does not fit frames of {h}x{w}")
    box = f[:, y0:y1, x0:x1]
    luma = box @ _LUMA
    sat = box.max(-1) - box.min(-1)
    med = np.median(luma.reshape(luma.shape[0], -1), axis=1)[:, None, None]
    opening = (luma < _DARK * med) | ((luma > _BRIGHT * med) & (sat < _GREY))
    column_height = opening.sum(axis=1)  # (T, W): open pixels per column
    k = max(1, column_height.shape[1] // 8)
    # The most-open columns, not the single most-open one: a lone dark column (a shadow at
    # the lip corner) must not read as an open mouth.
    top = np.sort(column_height, axis=1)[:, -k:].mean(axis=1)
    return top / float(y1 - y0)


def pearson(a, b) -> float:
    """Pearson correlation of two equal-length series.

    A constant series (e.g. a mouth that never moves) has no co-variation with anything:
    0.0 is returned rather than NaN, so an audio-zeroed model reads as "no correlation".
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"need two series of the same length >= 2, got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("series must be finite")
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # exact test: a - mean(a) leaves rounding residue
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
