"""Identity distance: dlib's face-recognition embedding (a ResNet trained for face
verification; 128 numbers per face, and two photos of one person are usually less than
0.6 apart). The weights ship inside the ``face-recognition-models`` wheel, so it runs
offline; ``pip install ".[eval]"`` installs it with ``dlib-bin``."""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Optional

import numpy as np

from ..errors import S3DError

SAME_PERSON = 0.6  # dlib's own threshold
NO_FACE = 1.5  # the distance counted for a frame without a face: beyond any two people


@functools.lru_cache(maxsize=1)
def _networks():
    try:
        import dlib
    except ImportError:
        raise S3DError('the identity metric needs dlib (pip install ".[eval]": dlib-bin)') from None
    # The package's __init__ imports pkg_resources, which new setuptools lacks: find its
    # folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise S3DError('the identity metric needs face-recognition-models (pip install ".[eval]")')
    models = os.path.join(list(spec.submodule_search_locations)[0], "models")
    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(os.path.join(models, "shape_predictor_5_face_landmarks.dat"))
    encoder = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))
    return detector, shape, encoder


def unavailable() -> Optional[str]:
    """Why the identity metric cannot run here (what to install), or None when it can."""
    try:
        _networks()
    except S3DError as exc:
        return str(exc)
    return None


def face_embedding(image: np.ndarray) -> Optional[np.ndarray]:
    """(128,) embedding of the largest face in a uint8 RGB image, or None without a face."""
    detector, shape, encoder = _networks()
    image = np.ascontiguousarray(image, np.uint8)
    faces = detector(image, 1)
    if not faces:
        return None
    face = max(faces, key=lambda r: r.width() * r.height())
    return np.asarray(encoder.compute_face_descriptor(image, shape(image, face)), np.float64)


def reference_embedding(image: np.ndarray) -> np.ndarray:
    """The embedding of the face frames are compared with; an error when it has none."""
    ref = face_embedding(image)
    if ref is None:
        raise S3DError("the identity metric found no face in the reference image")
    return ref


def identity_distance(reference, frames) -> tuple[float, int]:
    """Mean embedding distance of ``frames`` from the face in ``reference`` (an image, or
    its embedding; a frame without a face counts :data:`NO_FACE`), and how many frames had
    no face."""
    ref = reference if np.shape(reference) == (128,) else reference_embedding(reference)
    distances, missing = [], 0
    for frame in frames:
        emb = face_embedding(frame)
        missing += emb is None
        distances.append(NO_FACE if emb is None else float(np.linalg.norm(emb - ref)))
    return float(np.mean(distances)), missing
