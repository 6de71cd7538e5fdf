"""Per-frame camera-to-head sequences for rendering (docs/design.md section 5a conventions).

A render's cameras are a *base* sequence (the source image's own pose held still, or a
head-pose sequence taken from a preprocessed clip) with a free-view *offset* per frame
(a fixed yaw / pitch / roll, or an orbit). Offsets rotate the camera about the head's
centre (the origin of head space), exactly as SynthTalk's extra views do
(:func:`s3d_fast.data.synthtalk.camera.free_view`), so a model trained on those views sees
the same kind of camera here.
"""

from __future__ import annotations

import os

import numpy as np

from ..data.errors import DataError
from ..data.npz import load_npz
from ..data.synthtalk import camera as _camera
from .errors import CameraError


def check_c2w(c2w, where: str) -> np.ndarray:
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or c2w.shape[0] < 1:
        raise CameraError(f"{where}: expected camera-to-head matrices of shape (T, 4, 4), got {c2w.shape}")
    if not np.isfinite(c2w).all():
        raise CameraError(f"{where}: the cameras contain NaN or infinite values")
    rot = c2w[:, :3, :3]
    # A camera-to-head matrix is rigid: its 3x3 block is a rotation.
    if np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() > 1e-3 or (np.linalg.det(rot) < 0).any():
        raise CameraError(f"{where}: the cameras are not rigid transforms (their 3x3 blocks are not rotations)")
    return c2w


def static(c2w: np.ndarray, n: int) -> np.ndarray:
    """The source camera held still for ``n`` frames: (n, 4, 4)."""
    c2w = check_c2w(np.asarray(c2w)[None], "source camera")[0]
    return np.repeat(c2w[None], int(n), 0)


def fit_length(c2w: np.ndarray, n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Truncate or loop a (T, 4, 4) sequence to ``n`` frames (frames ``start`` to ``stop`` of them).

    Looping plays the sequence forwards then backwards (ping-pong), so a clip shorter than
    the speech never jumps from its last head pose back to its first.
    """
    c2w = np.asarray(c2w)
    t = c2w.shape[0]
    i = np.arange(start, n if stop is None else stop)
    if t >= n or t == 1:
        return c2w[np.minimum(i, t - 1)]
    period = 2 * t - 2
    k = i % period
    return c2w[np.where(k < t, k, period - k)]


def load_pose_sequence(path) -> np.ndarray:
    """The ``c2w`` (T, 4, 4) camera-to-head sequence of a preprocessed clip.

    ``path`` is a clip's ``meta.npz`` (docs/design.md section 5a per-clip arrays, as written by
    ``s3d-fast preprocess`` and ``s3d-fast synth``) or the clip folder holding it.
    Frames a preprocessor marked ``valid = False`` keep their interpolated pose.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "meta.npz")
    if not os.path.isfile(path):
        raise CameraError(f"{path}: no such pose file (expected a clip's meta.npz or its folder)")
    try:
        arrays = load_npz(path, keys=("c2w",), what="pose file")
    except DataError as exc:
        raise CameraError(str(exc)) from None
    if "c2w" not in arrays:
        raise CameraError(f"{path}: has no 'c2w' camera-to-head array (not a preprocessed clip?)")
    c2w = arrays["c2w"]
    return check_c2w(c2w, path)


def orbit_offsets(
    n: int, degrees: float, pitch_wobble: float | None = None, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """(n, 3) yaw, pitch, roll offsets: yaw sweeps -deg -> +deg -> -deg over the video.

    yaw(u) = -deg cos(2 pi u) with u = i / n (one full sweep, so a looping player never
    jumps), and a small pitch wobble at twice that rate (default a quarter of the orbit,
    at most 5 degrees) so the head is seen a little from above and below as well.
    ``start``/``stop``: only those frames of the n.
    """
    if pitch_wobble is None:
        pitch_wobble = min(5.0, 0.25 * abs(degrees))
    u = np.arange(int(start), int(n) if stop is None else int(stop)) / max(int(n), 1)
    out = np.zeros((u.shape[0], 3))
    out[:, 0] = -float(degrees) * np.cos(2 * np.pi * u)
    out[:, 1] = float(pitch_wobble) * np.sin(4 * np.pi * u)
    return out


def camera_yaw(c2w: np.ndarray) -> float:
    """Degrees the camera stands to one side of the head's front (0: frontal), in the sense
    a ``yaw`` offset turns it: ``camera_yaw(free_view(c2w, d, 0, 0)) = camera_yaw(c2w) + d``
    for a camera level with the head."""
    x, _, z = np.asarray(c2w, np.float64)[:3, 3]
    return float(np.degrees(np.arctan2(x, z)))


def apply_offsets(c2w: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Rotate each camera of (n, 4, 4) about the head centre by its (yaw, pitch, roll)."""
    offsets = np.broadcast_to(np.asarray(offsets, np.float64), (c2w.shape[0], 3))
    return np.stack([_camera.free_view(c, *o) for c, o in zip(c2w, offsets)])


def camera_sequence(
    source_c2w: np.ndarray,
    n: int,
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    orbit: float | None = None,
    pose_from=None,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """The (n, 4, 4) float32 camera-to-head matrices of a render (or frames ``start`` to
    ``stop`` of them, the same values).

    Base: ``pose_from`` (a clip's head-pose sequence: its meta.npz / folder, or the
    (T, 4, 4) array itself; looped or truncated to ``n``) or the source camera held
    still. Offset: ``orbit`` degrees, or the fixed yaw/pitch/roll; the two kinds of
    offset are exclusive.
    """
    n = int(n)
    if n < 1:
        raise CameraError(f"a render needs at least one frame, got {n}")
    stop = n if stop is None else int(stop)
    if not 0 <= start < stop <= n:
        raise CameraError(f"frames {start} to {stop} are not within the render's {n}")
    if orbit is not None and (yaw or pitch or roll):
        raise CameraError("--orbit sweeps the yaw itself; do not combine it with --yaw/--pitch/--roll")
    for name, value in (("yaw", yaw), ("pitch", pitch), ("roll", roll), ("orbit", orbit)):
        if value is not None and not np.isfinite(value):
            raise CameraError(f"--{name} must be a finite number of degrees, got {value}")
    if orbit is not None and not 0.0 <= abs(orbit) <= 180.0:
        raise CameraError(f"--orbit must be within [0, 180] degrees, got {orbit}")
    if pose_from is None:
        base = static(source_c2w, stop - start)
    elif isinstance(pose_from, (str, os.PathLike)):
        base = fit_length(load_pose_sequence(pose_from), n, start, stop)
    else:
        base = fit_length(check_c2w(pose_from, "pose_from"), n, start, stop)
    offsets = (
        orbit_offsets(n, orbit, start=start, stop=stop)
        if orbit is not None
        else np.array([yaw, pitch, roll], np.float64)
    )
    return apply_offsets(base, offsets).astype(np.float32)


class CameraPath:
    """The cameras of :func:`camera_sequence` served one frame at a time, ``path(i)`` -> (4, 4),
    computed a block of frames at a time, so a long render never holds them all."""

    BLOCK = 256

    def __init__(self, source_c2w: np.ndarray, n: int, **options):
        if isinstance(options.get("pose_from"), (str, os.PathLike)):
            options["pose_from"] = load_pose_sequence(options["pose_from"])
        camera_sequence(source_c2w, n, stop=1, **options)  # every option checked now
        self.source_c2w, self.n, self.options = source_c2w, int(n), options
        self._start, self._block = 0, None

    def __call__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n:
            raise CameraError(f"frame {i} is not within the render's {self.n}")
        if self._block is None or not self._start <= i < self._start + self._block.shape[0]:
            self._start = i - i % self.BLOCK
            stop = min(self.n, self._start + self.BLOCK)
            self._block = camera_sequence(self.source_c2w, self.n, start=self._start, stop=stop, **self.options)
        return self._block[i - self._start]
