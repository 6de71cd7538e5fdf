"""Evaluation metrics: image fidelity, mouth motion and lip sync."""

from .image import psnr, ssim
from .mouth import DEFAULT_MOUTH_BOX, mouth_opening, mouth_region, pearson
from .sync import shift_audio, sync_scores

__all__ = [
    "psnr",
    "ssim",
    "DEFAULT_MOUTH_BOX",
    "mouth_opening",
    "mouth_region",
    "pearson",
    "shift_audio",
    "sync_scores",
]
