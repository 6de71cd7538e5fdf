"""Evaluation metrics: image fidelity, mouth motion and lip sync."""
from .image import psnr, ssim  # noqa: F401
from .mouth import DEFAULT_MOUTH_BOX, mouth_opening, mouth_region, pearson  # noqa: F401
from .sync import shift_audio, sync_scores  # noqa: F401

__all__ = ["psnr", "ssim", "DEFAULT_MOUTH_BOX", "mouth_opening", "mouth_region", "pearson", "shift_audio", "sync_scores"]
