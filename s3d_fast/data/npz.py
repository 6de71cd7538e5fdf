"""Compressed ``.npz`` files, written whole or not at all."""

from __future__ import annotations

import numpy as np

from ..atomic import atomic_path


def save_npz(path, arrays: dict) -> None:
    """``np.savez_compressed`` to ``path`` atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
