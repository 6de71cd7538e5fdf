"""Head pose from 3-D landmarks, and face / lip / mouth masks from landmark hulls."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw


def head_rotation(lm: np.ndarray) -> np.ndarray:
    """Head-to-camera rotation (3, 3) from (478, 3) landmarks in camera axes (OpenCV).

    Head axes (docs/design.md section 5a): +x towards the subject's left (the image's right on a frontal
    face), +y up (chin to forehead), +z out of the face towards the viewer.
    """
    x = lm[263] - lm[33]  # subject's right eye outer corner -> left eye outer corner
    up = lm[10] - lm[152]  # chin -> top of forehead
    x = x / np.linalg.norm(x)
    y = up - (up @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    return np.stack([x, y, z], 1)


def euler_from_rotation(r: np.ndarray):
    """(yaw, pitch, roll) degrees for R = Ry(yaw) Rx(pitch) Rz(roll)."""
    pitch = np.degrees(np.arcsin(np.clip(-r[1, 2], -1, 1)))
    yaw = np.degrees(np.arctan2(r[0, 2], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[1, 1]))
    return yaw, pitch, roll


@functools.lru_cache(maxsize=1)
def _loops():
    """Ordered polygons: face oval, outer lips, inner lips (chained from mediapipe's edges)."""
    from mediapipe.python.solutions import face_mesh_connections as c

    def cycles(edges):
        adj = {}
        for a, b in edges:
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
        seen, out = set(), []
        for start in sorted(adj):
            if start in seen:
                continue
            loop, prev, cur = [start], None, start
            seen.add(start)
            while True:
                nxt = [n for n in adj[cur] if n != prev and (n not in seen or (n == start and len(loop) > 2))]
                if not nxt or nxt[0] == start:
                    break
                prev, cur = cur, nxt[0]
                loop.append(cur)
                seen.add(cur)
            out.append(np.array(loop))
        return out

    oval = max(cycles(c.FACEMESH_FACE_OVAL), key=len)
    lips = sorted(cycles(c.FACEMESH_LIPS), key=len)
    return oval, lips[-1], lips[0]


def _area(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def masks_from_landmarks(lm2d: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 labels: 0 background, 1 face, 2 lips, 3 mouth interior."""

    oval, outer, inner = _loops()
    if _area(lm2d[inner]) > _area(lm2d[outer]):
        outer, inner = inner, outer
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    for loop, label in ((oval, 1), (outer, 2), (inner, 3)):
        draw.polygon([tuple(p) for p in lm2d[loop, :2].tolist()], fill=label)
    return np.asarray(img, np.uint8)
