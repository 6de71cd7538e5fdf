"""Image and mouth scores of rendered frames against the ground truth."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import landmarks as lm
from ..metrics import psnr, ssim


def to_tensor(frames_uint8):
    return torch.from_numpy(np.ascontiguousarray(frames_uint8)).permute(0, 3, 1, 2).float() / 255.0


def fit_size(pred, size: int):
    """Our frames at the ground truth's resolution (area / bilinear, antialiased)."""
    if pred.shape[-1] == size:
        return pred
    return F.interpolate(pred, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)


def metric_box(box, h: int, w: int, minimum: int = 11):
    """A (y0, y1, x0, x1) box grown about its centre to at least ``minimum`` pixels a side
    (SSIM's window), kept inside the frame."""
    y0, y1, x0, x1 = (int(v) for v in box)

    def grow(a, b, n):
        if b - a >= minimum:
            return a, b
        c = (a + b) // 2
        a = max(0, min(n - minimum, c - minimum // 2))
        return a, min(n, a + minimum)

    y0, y1 = grow(y0, y1, h)
    x0, x1 = grow(x0, x1, w)
    return y0, y1, x0, x1


def image_metrics(gt, pred, box, frames=None) -> dict[str, float]:
    """PSNR / SSIM of pred vs gt ((T, 3, H, W) float in [0, 1]) over the chosen frames:
    whole frame and the mouth ``box``; per-frame values averaged (PSNR in dB, an identical
    frame is +inf and so is the mean)."""
    if frames is not None:
        idx = torch.as_tensor(np.flatnonzero(frames))
        gt, pred = gt[idx], pred[idx]
    if gt.shape[0] == 0:
        nan = float("nan")
        return {"psnr": nan, "ssim": nan, "mouth_psnr": nan, "mouth_ssim": nan}
    y0, y1, x0, x1 = metric_box(box, gt.shape[-2], gt.shape[-1])
    mg, mp = gt[..., y0:y1, x0:x1], pred[..., y0:y1, x0:x1]
    return {
        "psnr": float(psnr(pred, gt, reduction="none").mean()),
        "ssim": float(ssim(pred, gt, reduction="none").mean()),
        "mouth_psnr": float(psnr(mp, mg, reduction="none").mean()),
        "mouth_ssim": float(ssim(mp, mg, reduction="none").mean()),
    }


def mouth_landmarks(gt_u8, ours, masks, real: bool):
    """(gt landmarks, our landmarks, the pixel rule on gt (None on real data))."""
    if real:
        return lm.landmarks_mediapipe(gt_u8), lm.landmarks_mediapipe(ours), None
    return lm.landmarks_from_masks(masks), lm.landmarks_from_pixels(ours, masks), lm.landmarks_from_pixels(gt_u8, masks)
