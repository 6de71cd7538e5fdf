"""Files written whole or not at all: a temporary sibling, then a rename."""
from __future__ import annotations

import os

import numpy as np


def save_npz(path, arrays: dict) -> None:
    """``np.savez_compressed`` to ``path`` atomically (a reader never sees half a file)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
