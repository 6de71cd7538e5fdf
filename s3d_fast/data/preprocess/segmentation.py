"""The person in a photo (hair, shoulders, clothes), apart from the scene behind them, with
mediapipe's selfie segmentation (its model ships inside the wheel, as the face mesh's does)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import DataError
from .landmarks import _native_stderr_silenced


def person_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how surely each pixel of a uint8 RGB photo shows a person."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from mediapipe.python.solutions import selfie_segmentation
    except ImportError as exc:
        raise DataError(f"segmenting a photo needs mediapipe 0.10.x (pip install mediapipe==0.10.14): {exc}") from None
    with (
        _native_stderr_silenced(),
        warnings.catch_warnings(),
        selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter,
    ):
        warnings.simplefilter("ignore", UserWarning)
        mask = segmenter.process(np.ascontiguousarray(image)).segmentation_mask
    return np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
