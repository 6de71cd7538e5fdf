"""Compressed ``.npz`` files, written whole or not at all, and read with one clear error.

A damaged or hostile ``.npz`` (truncated, not a zip, an array header claiming more bytes
than its zip entry holds) is refused before any array is allocated, so a bad file costs
no more memory than the file itself says it holds.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from typing import Optional

import numpy as np

from ..atomic import atomic_path
from .errors import DataError

MAX_NPZ_BYTES = 2 << 30  # a clip's meta.npz at 1024^2 and an hour of frames is far below


class ArrayFileError(DataError):
    """An ``.npz`` file is missing, damaged, or holds an array it cannot."""


def save_npz(path, arrays: dict) -> None:
    """``np.savez_compressed`` to ``path`` atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_npz(path, keys: Optional[tuple] = None, what: str = "array file") -> dict:
    """Every array of the ``.npz`` at ``path`` (or only ``keys``, those present), never
    unpickling; :class:`ArrayFileError` naming the file for any damage."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArrayFileError(f"{path}: no such {what}")
    try:
        _check_entries(path)
        with np.load(path, allow_pickle=False) as npz:
            names = npz.files if keys is None else [k for k in keys if k in npz.files]
            return {k: npz[k] for k in names}
    except ArrayFileError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArrayFileError(f"{path}: cannot read the {what} ({first})") from None


def _check_entries(path: str) -> None:
    """Each entry's array header against the entry's own size (read before decoding)."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    continue  # (3, 0): utf-8 field names; np.load checks the rest
                claimed = math.prod(shape) * dtype.itemsize
                if claimed > info.file_size:
                    raise ArrayFileError(
                        f"{path}: entry {info.filename} claims a {shape} {dtype} array "
                        f"({claimed} bytes) but holds {info.file_size} bytes"
                    )
                total += claimed
                if total > MAX_NPZ_BYTES:  # honest but inflating to more than any data file of ours
                    raise ArrayFileError(
                        f"{path}: its arrays inflate to more than {MAX_NPZ_BYTES / 2**30:g} GB (a zip bomb?)"
                    )
