"""Where a photo's pixels are in 3-D, so it can be seen from another camera.

The face comes from mediapipe's 478-point mesh (its depth, in pixels like x and y, is
placed so that the face's outline sits at the head centre's depth), the rest of the person
(hair, ears, neck, clothes) continues the face's depth and relaxes to the head centre's
away from it, and the scene behind stays where it is in the image: a talking head's
background does not swing with a turn of the view. ``anchor`` says how much each pixel
moves with the head (1 on the person, 0 on the background, soft in between so the turn
stretches the border instead of tearing a hole in it).
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np
from PIL import Image

from ..data.preprocess import segmentation
from ..data.synthtalk import camera

GRID = 128  # geometry samples per side: the displacement is smooth, the photo is sampled at full resolution
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
              148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
_RELAX = 0.12  # of the image: how far from the face the person's depth relaxes to the head centre's
_SEAM = 1 / 16  # of the image: the soft border between the person and the background
# A photo turned this many degrees or more from the camera (yaw and pitch) is rendered at a
# camera turned towards its front and taken back into the photo; closer to frontal, at its
# own camera (docs/experiments.md, "Turned sources: rendered frontal and turned back").
FRONTAL_FROM = 20.0
# The turn left to that camera, within the turns the model was trained on: the far side of
# the face, which the photo does not show, grows with the turn the view undoes.
FRONTAL_KEEP = 15.0
# A face turned this many degrees or more to one side has its far half, which the photo
# shows squeezed or not at all, seen as its near half mirrored in that view
# (docs/experiments.md, "Turned sources: the far half mirrored").
MIRROR_FROM = 25.0
# Beyond this the photo is near a profile: the mirrored half, seen from the frontal camera,
# puts the painted mouth in front of the photo's profile, so such a face is kept unpainted.
MIRROR_UP_TO = 40.0
# Mirror pairs of the mesh (the subject's left, then right): the face oval's two halves,
# the eyes' corners, the mouth's corners; and points on the face's midline.
_MIRROR_PAIRS = tuple(zip(_FACE_OVAL[1:18], _FACE_OVAL[:18:-1])) + ((263, 33), (362, 133), (291, 61))
_MIDLINE = (10, 151, 9, 168, 6, 197, 195, 5, 4, 1, 0, 13, 14, 17, 199, 152)


@functools.lru_cache(maxsize=1)
def _pixel_centres(size: int) -> np.ndarray:
    ticks = np.arange(size, dtype=np.float64) + 0.5
    return np.stack(np.meshgrid(ticks, ticks, indexing="xy"), -1)  # (size, size, 2) x, y


def _landmark_depth(landmarks: np.ndarray, centre_depth: float, focal: float) -> np.ndarray:
    # mediapipe's z is in pixels like x; at the head's distance a pixel is depth / focal.
    z = landmarks[:, 2] - np.median(landmarks[list(_FACE_OVAL), 2])
    return centre_depth + z * centre_depth / focal


def depth_map(landmarks: np.ndarray, resolution: int, centre_depth: float, focal: float, size: int = GRID):
    """(size, size) camera depth of each pixel of the person and (size, size) bool: inside
    the face mesh. ``landmarks`` (478, 3) in pixels of ``resolution``."""
    # scipy is imported where a photo is turned (about 1 s): the commands import this module.
    from scipy import interpolate, ndimage

    scale = size / resolution
    xy = landmarks[:, :2] * scale
    depth = _landmark_depth(landmarks, centre_depth, focal)
    face = interpolate.LinearNDInterpolator(xy, depth)(_pixel_centres(size))
    inside = np.isfinite(face)
    # Outside the mesh: the nearest face pixel's depth, relaxing to the head centre's.
    distance, (iy, ix) = ndimage.distance_transform_edt(~inside, return_indices=True)
    relax = np.exp(-distance / (_RELAX * size))
    depth = centre_depth + (face[iy, ix] - centre_depth) * relax
    return depth, inside


def photo_geometry(image: np.ndarray, landmarks: np.ndarray, c2w: np.ndarray, K: np.ndarray, size: int = GRID):
    """Head-space points (3, size, size) of an aligned photo's pixels and the anchor
    (1, size, size) in [0, 1], float32. ``image`` (R, R, 3) uint8, ``landmarks`` (478, 3)
    and ``K`` in pixels of R, ``c2w`` camera-to-head."""
    from scipy import ndimage

    R = image.shape[0]
    depth, inside = depth_map(landmarks, R, _centre_depth(c2w), float(K[0, 0]), size)
    points = _head_points(_pixel_centres(size) * (R / size), depth, c2w, K)
    person = np.asarray(_resize(segmentation.person_mask(image), size), np.float64)
    person = np.maximum(person, inside)
    anchor = ndimage.gaussian_filter(person, _SEAM * size / 2)
    anchor = np.maximum(anchor, inside)
    return points.transpose(2, 0, 1).astype(np.float32), anchor[None].astype(np.float32)


def landmark_points(landmarks: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(478, 3) head-space points of a photo's mesh, placed in depth as ``photo_geometry``
    places its pixels; ``landmarks`` and ``K`` in pixels of the photo, ``c2w`` its camera."""
    depth = _landmark_depth(landmarks, _centre_depth(c2w), float(K[0, 0]))
    return _head_points(landmarks[:, :2], depth, c2w, K)


def _centre_depth(c2w: np.ndarray) -> float:
    """The head centre (the origin) in the camera's z."""
    return float((c2w[:3, :3].T @ -c2w[:3, 3])[2])


def _head_points(uv: np.ndarray, depth: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) head-space points of pixels uv (..., 2) at camera depths ``depth`` (...)."""
    ray = np.stack([(uv[..., 0] - K[0, 2]) / K[0, 0], (uv[..., 1] - K[1, 2]) / K[1, 1], np.ones(uv.shape[:-1])], -1)
    return (ray * depth[..., None]) @ c2w[:3, :3].T + c2w[:3, 3]


def symmetry_plane(landmarks: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The face's plane of symmetry in head space, (4,) float32: a unit normal n, towards the
    half of the face the camera ``c2w`` sees better, and d, so that the plane is n . p = d.
    From the photo's mesh (``landmark_points``): the head pose's own x = 0 misses the face's
    midline by the error of the pose and of the head centre."""
    points, centre = landmark_points(landmarks, c2w, K), c2w[:3, 3]
    left, right = (points[[pair[side] for pair in _MIRROR_PAIRS]] for side in (0, 1))
    normal = (left - right).sum(0)
    normal /= np.linalg.norm(normal)
    on_plane = np.concatenate([(left + right) / 2, points[list(_MIDLINE)]])
    offset = (on_plane @ normal).mean()
    if centre @ normal < offset:
        normal, offset = -normal, -offset
    return np.append(normal, offset).astype(np.float32)


def far_half_plane(
    landmarks: np.ndarray, c2w: np.ndarray, K: np.ndarray, turns: tuple = (MIRROR_FROM, MIRROR_UP_TO)
) -> Optional[np.ndarray]:
    """``symmetry_plane`` for a face turned ``turns`` (from, up to) degrees to one side of
    the camera ``c2w`` (the camera's angle from the plane, so a face looking up or down does
    not count); None for a face closer to frontal, whose two halves the photo both shows, or
    closer to a profile."""
    plane = symmetry_plane(landmarks, c2w, K)
    centre = c2w[:3, 3]
    turn = np.degrees(np.arcsin(np.clip((centre @ plane[:3] - plane[3]) / np.linalg.norm(centre), -1.0, 1.0)))
    return plane if turns[0] <= turn < turns[1] else None


def _resize(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.BILINEAR))


def turn_from_front(c2w: np.ndarray) -> float:
    """Degrees between a camera's view of the head and the front camera's (yaw and pitch
    together; roll, in the image plane, does not count)."""
    look, front = c2w[:3, 2], camera.front_camera()[:3, 2]
    cosine = float(look @ front / np.linalg.norm(look))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def frontal_camera(c2w: np.ndarray, min_turn: float = FRONTAL_FROM, keep: float = FRONTAL_KEEP) -> Optional[np.ndarray]:
    """A camera turned from ``c2w`` towards the front of the head, about the head centre and
    at the same distance, until ``keep`` degrees of the turn are left (none of the roll),
    for a photo turned at least ``min_turn`` degrees (yaw and pitch); None for a photo closer
    to frontal, which the model renders at its own camera."""
    turn = turn_from_front(c2w)
    if turn < min_turn:
        return None
    distance = float(np.linalg.norm(c2w[:3, 3]))
    seen_from, front = c2w[:3, 3] / distance, np.array([0.0, 0.0, 1.0])
    angle = np.radians(turn)
    t = 1.0 - min(keep, turn) / turn  # slerp from the camera's direction to the front's
    eye = (np.sin((1 - t) * angle) * seen_from + np.sin(t * angle) * front) / np.sin(angle)
    return camera.look_at(eye * distance)
