"""Real photographs that packages on the registries ship, for the photo tests (never a
download while tests run): scikit-image's astronaut, matplotlib's Grace Hopper, and
insightface's group photo (six people at a card table, several turned 20-40 degrees from
the camera; installed without its dependencies, see the README's Tests section)."""

from __future__ import annotations

import importlib.util
import os

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image


def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


def grace_hopper() -> np.ndarray:
    return np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))


def group_photo_path() -> str:
    """insightface's ``data/images/t1.jpg``, found without importing insightface (whose
    dependencies are not installed)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the group photo comes with insightface: pip install --no-deps insightface==0.7.3")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "images", "t1.jpg")


def group_photo() -> np.ndarray:
    return np.asarray(Image.open(group_photo_path()).convert("RGB"))
