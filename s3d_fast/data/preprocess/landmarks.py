"""Face landmarks with mediapipe's face mesh (478 points with iris refinement).

mediapipe 0.10.x ships the face-mesh models inside its wheel, so nothing is downloaded.
Landmarks come back in pixels: x right, y down, z forward (mediapipe scales z like x).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable

import numpy as np

from ..errors import DataError

N_LANDMARKS = 478


@contextlib.contextmanager
def _native_stderr_silenced():
    """mediapipe's C++ side prints start-up chatter straight to fd 2 (TFLite delegates,
    absl pre-init notices); hide it so the CLI's stderr stays for real errors. Python
    exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _face_mesh():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from mediapipe.python.solutions import face_mesh
    except ImportError as exc:
        raise DataError(f"preprocessing needs mediapipe 0.10.x (pip install 'mediapipe==0.10.14'): {exc}") from None
    return face_mesh


def detect(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478, 3) pixel landmarks (NaN where no face) and (T,) bool found."""
    face_mesh = _face_mesh()
    out, found = [], []
    # Video mode tracks between frames (faster, steadier) and re-detects when lost.
    with (
        _native_stderr_silenced(),
        warnings.catch_warnings(),
        face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        ) as mesh,
    ):
        warnings.simplefilter("ignore", UserWarning)  # protobuf deprecation notices per frame
        for frame in frames:
            h, w = frame.shape[:2]
            result = mesh.process(np.ascontiguousarray(frame))
            if not result.multi_face_landmarks:
                out.append(np.full((N_LANDMARKS, 3), np.nan, np.float32))
                found.append(False)
                continue
            lm = result.multi_face_landmarks[0].landmark
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm], np.float32)
            out.append(pts)
            found.append(True)
    return np.stack(out), np.array(found, bool)
