"""Contact sheet: identities (rows) x mouth shapes and views (columns), one PNG."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ...atomic import atomic_path
from . import camera, head, photo_render
from .generate import light_direction, render_view
from .identity import Identity

# (label, jaw, width, rounding, blink, yaw, pitch)
COLUMNS = [
    ("rest", 0.02, 0.45, 0.15, 0.0, 0, 0),
    ("/a/", 0.95, 0.55, 0.10, 0.0, 0, 0),
    ("/i/", 0.22, 0.95, 0.0, 0.0, 0, 0),
    ("/u/", 0.25, 0.10, 1.0, 0.0, 0, 0),
    ("/m/ blink", 0.0, 0.45, 0.15, 1.0, 0, 0),
    ("/o/ yaw 35", 0.62, 0.25, 0.8, 0.0, 35, 0),
    ("/e/ yaw -30 pitch 12", 0.55, 0.75, 0.05, 0.0, -30, 12),
]


def contact_sheet(identities: Sequence[Identity], size: int = 128, supersample: int = 2) -> np.ndarray:
    K = camera.intrinsics(size)
    rows = []
    for ident in identities:
        tiles = []
        light = light_direction(ident)
        for _, jaw, width, rounding, blink, yaw, pitch in COLUMNS:
            state = head.FrameState(jaw=jaw, width=width, rounding=rounding, blink=blink)
            c2w = camera.free_view(camera.front_camera(), yaw, pitch)
            rgb, _ = render_view(ident, state, c2w, K, size, light, supersample)
            tiles.append(rgb)
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def write_contact_sheet(path: str, identities: Sequence[Identity], size: int = 128, supersample: int = 2) -> str:

    image = Image.fromarray(contact_sheet(identities, size, supersample))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


# The photo style turns the head (not the camera) so the body and scene stay put.
PHOTO_COLUMNS = COLUMNS[:5] + [
    ("/o/ yaw 45", 0.62, 0.25, 0.8, 0.0, 45, 0),
    ("/e/ yaw -30 pitch 10", 0.55, 0.75, 0.05, 0.0, -30, 10),
]


def photo_contact_sheet(looks: Sequence, size: int = 128, supersample: int = 2) -> np.ndarray:
    """``looks``: (Identity, PhotoLook) pairs, one row each."""
    K = camera.intrinsics(size)
    rows = []
    for ident, look in looks:
        tiles = []
        for _, jaw, width, rounding, blink, yaw, pitch in PHOTO_COLUMNS:
            state = head.FrameState(jaw=jaw, width=width, rounding=rounding, blink=blink)
            pose = camera.pose(yaw, pitch, 0.0)
            c2w = np.linalg.inv(pose) @ camera.front_camera()
            rgb, _ = photo_render.render_view(
                ident, look, state, pose, c2w, K, size, light_direction(ident), supersample
            )
            tiles.append(rgb)
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def write_photo_contact_sheet(path: str, looks: Sequence, size: int = 128, supersample: int = 2) -> str:
    image = Image.fromarray(photo_contact_sheet(looks, size, supersample))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
