"""An utterance rendered to the mp4 ``s3d-fast render`` writes (its own code:
:func:`s3d_fast.render.cli.write_mp4`), into a file of the server's own naming."""

from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy as np

from ..render import api
from ..render.cli import write_mp4
from .media import SAMPLE_RATE

BLOCK = SAMPLE_RATE  # speech handed to the writer a second at a time


class SpeechBlocks(list):
    """Samples as a re-iterable list of blocks, as ``write_mp4`` reads speech (twice)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, samples: np.ndarray):
        super().__init__(samples[i : i + BLOCK] for i in range(0, samples.shape[0], BLOCK))


def render_mp4(identity, samples: np.ndarray, pose: Callable[[int], np.ndarray], *, fps: int = 25, size=None) -> str:
    """The path of a new mp4 in a temporary folder (the caller removes it with :func:`remove`)."""
    n_frames = api.frame_count(samples.shape[0], SAMPLE_RATE, fps)
    folder = tempfile.mkdtemp(prefix="s3d-serve-")
    out = os.path.join(folder, "utterance.mp4")
    try:
        write_mp4(identity, SpeechBlocks(samples), out, n_frames, fps=fps, poses=pose, batch=4, size=size)
    except BaseException:
        remove(out)
        raise
    return out


def remove(path: str) -> None:
    folder = os.path.dirname(path)
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        os.unlink(os.path.join(folder, name))
    if os.path.isdir(folder):
        os.rmdir(folder)
