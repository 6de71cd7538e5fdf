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


MAX_FACES = 16  # faces looked for in one photo
_TILES = (1, 2, 3)  # the photo whole, then in overlapping 2x2 and 3x3 tiles: small faces in a group


def _face_boxes(image: np.ndarray) -> list[np.ndarray]:
    """(x0, y0, x1, y1) pixel boxes of the faces mediapipe's full-range detector finds in
    the photo and in overlapping tiles of it (it sees the photo at 192^2, where the faces
    of a group are a few pixels wide), merged where they overlap."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from mediapipe.python.solutions import face_detection
    except ImportError as exc:
        raise DataError(f"finding faces needs mediapipe 0.10.x (pip install 'mediapipe==0.10.14'): {exc}") from None
    h, w = image.shape[:2]
    found = []  # (score, box)
    with (
        _native_stderr_silenced(),
        warnings.catch_warnings(),
        face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6) as detector,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for n in _TILES:
            th, tw = int(np.ceil(h / n * 1.5)) if n > 1 else h, int(np.ceil(w / n * 1.5)) if n > 1 else w
            for y0 in np.linspace(0, h - th, n).astype(int):
                for x0 in np.linspace(0, w - tw, n).astype(int):
                    tile = np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw])
                    for det in detector.process(tile).detections or []:
                        b = det.location_data.relative_bounding_box
                        box = np.array([b.xmin * tw + x0, b.ymin * th + y0, 0, 0], np.float64)
                        box[2:] = box[:2] + (b.width * tw, b.height * th)
                        found.append((det.score[0], box))
    kept: list[np.ndarray] = []
    for _, box in sorted(found, key=lambda f: -f[0]):
        if all(_overlap(box, other) < 0.3 for other in kept):
            kept.append(box)
    return kept[:MAX_FACES]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-9)


def detect_faces(image: np.ndarray) -> np.ndarray:
    """(N, 478, 3) pixel landmarks of every face found in one photo, numbered left to
    right by the centre of their landmarks (N may be 0). Each face's mesh is fitted in a
    square crop around it (twice its box), so every face gets the mesh's full detail."""
    face_mesh = _face_mesh()
    h, w = image.shape[:2]
    faces = []
    with (
        _native_stderr_silenced(),
        warnings.catch_warnings(),
        face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh,
    ):
        warnings.simplefilter("ignore", UserWarning)
        # A face filling the photo (or turned far) can escape the detector and still be
        # meshed: then the box is the photo's centre half, and the crop around it all of it.
        for box in _face_boxes(image) or [np.array([w / 4, h / 4, 3 * w / 4, 3 * h / 4])]:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half = max(box[2] - box[0], box[3] - box[1])
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
            crop = np.ascontiguousarray(image[y0:y1, x0:x1])
            result = mesh.process(crop)
            if not result.multi_face_landmarks:
                continue
            cw, ch = x1 - x0, y1 - y0
            lm = result.multi_face_landmarks[0].landmark
            faces.append(np.array([(p.x * cw + x0, p.y * ch + y0, p.z * cw) for p in lm], np.float32))
    faces.sort(key=lambda lm: float(lm[:, 0].mean()))
    return np.stack(faces) if faces else np.zeros((0, N_LANDMARKS, 3), np.float32)


def face_area(lm: np.ndarray) -> float:
    """Area of the bounding box of one face's landmarks, in pixels."""
    span = lm[:, :2].max(0) - lm[:, :2].min(0)
    return float(span[0] * span[1])
