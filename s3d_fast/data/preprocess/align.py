"""FFHQ-style alignment from eyes and mouth, smoothed over time.

Per frame, eye centres and mouth centre give an oriented square (centre, half-axis x,
half-axis y = x turned 90 degrees), as in the FFHQ recipe. The square's centre and axis
are smoothed over time (a Gaussian over frames, missing frames interpolated), so the crop
does not jitter with landmark noise; every frame is then warped with its similarity
transform to the data set's resolution.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter1d


@functools.lru_cache(maxsize=1)
def _indices():
    from mediapipe.python.solutions import face_mesh_connections as c

    def verts(edges):
        return np.array(sorted({i for e in edges for i in e}))

    # mediapipe's LEFT is the subject's left, which appears on the image's right.
    return verts(c.FACEMESH_RIGHT_EYE), verts(c.FACEMESH_LEFT_EYE), verts(c.FACEMESH_LIPS)


def square_from_landmarks(lm: np.ndarray):
    """(centre (2,), half-axis x (2,)) of the FFHQ crop for (478, 2+) landmarks."""
    right_eye, left_eye, lips = _indices()
    eye_l = lm[right_eye, :2].mean(0)  # image left
    eye_r = lm[left_eye, :2].mean(0)  # image right
    mouth = lm[lips, :2].mean(0)
    eye_avg = 0.5 * (eye_l + eye_r)
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])  # rot90 as in FFHQ
    x /= np.linalg.norm(x)
    x *= max(np.linalg.norm(eye_to_eye) * 2.0, np.linalg.norm(eye_to_mouth) * 1.8)
    centre = eye_avg + eye_to_mouth * 0.1
    return centre, x


def smooth_track(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time of (T, D) values, with invalid frames interpolated."""
    t = np.arange(values.shape[0])
    filled = np.stack([np.interp(t, t[valid], values[valid, d]) for d in range(values.shape[1])], 1)
    if sigma <= 0:
        return filled

    return gaussian_filter1d(filled, sigma, axis=0, mode="nearest")


def similarity(centre: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix mapping image pixels to output pixels of the (centre, x) square."""
    y = np.array([-x[1], x[0]])  # x turned 90 degrees: points down the face
    scale = size / (2.0 * np.linalg.norm(x))
    rot = np.stack([x / np.linalg.norm(x), y / np.linalg.norm(y)]) * scale  # rows: output axes
    corner = centre - x - y
    return np.concatenate([rot, (-rot @ corner)[:, None]], 1)


def warp(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Resample ``frame`` so that output = m @ input (bilinear; black outside the source)."""

    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # PIL wants output -> input
    img = Image.fromarray(frame).transform(
        (size, size), Image.Transform.AFFINE, tuple(inv.reshape(-1)), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(img)
