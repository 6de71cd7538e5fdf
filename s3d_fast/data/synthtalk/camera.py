"""Cameras (docs/design.md section 5a): OpenCV convention (x right, y down, z forward), 4x4 camera-to-world,
intrinsics in pixels. Head motion is folded into the camera: camera-to-head =
inverse(head pose) @ physical camera. Free-view offsets rotate the camera about the head.
"""

from __future__ import annotations

import functools

import numpy as np

DISTANCE = 4.0  # physical camera distance from the head centre (head radius ~0.7)
HALF_EXTENT = 1.15  # half the field of view at the head, in head units


def intrinsics(size: int, distance: float = DISTANCE, half_extent: float = HALF_EXTENT) -> np.ndarray:
    f = 0.5 * size * distance / half_extent
    return np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], np.float64)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) Rx(pitch) Rz(roll), degrees; yaw about +y (up), pitch about +x."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def pose(yaw: float, pitch: float, roll: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation(yaw, pitch, roll)
    m[:3, 3] = translation
    return m


def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """OpenCV camera-to-world looking from ``eye`` at ``target`` with world ``up``."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def front_camera(distance: float = DISTANCE) -> np.ndarray:
    return look_at((0.0, 0.0, distance))


def free_view(c2w: np.ndarray, yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Rotate a camera-to-head matrix about the head centre by a free-view offset."""
    return pose(yaw, pitch, roll) @ c2w


@functools.lru_cache(maxsize=8)
def _camera_dirs(fx: float, fy: float, cx: float, cy: float, height: int, width: int) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1).reshape(-1, 3)
    cam /= np.linalg.norm(cam, axis=1, keepdims=True)
    cam.setflags(write=False)
    return cam


def rays(c2w: np.ndarray, K: np.ndarray, height: int, width: int):
    """Origins and unit directions (H*W, 3), row-major, through pixel centres."""
    cam = _camera_dirs(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), int(height), int(width))
    d = cam @ c2w[:3, :3].T  # a rotation keeps unit length
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    return o, d
