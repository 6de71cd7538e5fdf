"""One real video -> one clip of the data-set format, all or nothing.

decode (PyAV) -> 25 fps frame selection -> mediapipe landmarks -> smoothed FFHQ crop ->
warped frames, landmarks in crop pixels, head pose from the 3-D landmarks, masks from
the landmark hulls; speech from the video's audio track at 16 kHz. Frames without a face
are reported and marked ``valid = False`` (their crop is interpolated from neighbours, so
audio stays in sync). A video with no face at all, no audio track, or that cannot be
decoded raises a :class:`DataError` and leaves nothing on disk: the clip folder is
written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ...atomic import atomic_directory
from .. import audio as audio_mod
from .. import video
from ..errors import DataError
from ..synthtalk import camera
from . import align, geometry, landmarks

FPS = 25


@dataclass
class Processed:
    frames: np.ndarray  # (T, S, S, 3) uint8
    audio: np.ndarray  # 16 kHz mono float32
    meta: dict
    n_faceless: int


def process_video(path, size: int = 256, smooth_sigma: float = 1.5) -> Processed:
    path = os.fspath(path)
    src = video.read_video(path)
    if src.audio is None:
        raise DataError(f"{path}: the video has no audio track; a talking-head clip needs its speech")
    # Resample to 25 fps by picking the source frame nearest each output time.
    n_out = min(int(src.frames.shape[0] * FPS / src.fps), audio_mod.num_video_frames(src.audio.shape[0]))
    if n_out < 1:
        raise DataError(f"{path}: shorter than one frame at {FPS} fps")
    pick = np.minimum(np.round(np.arange(n_out) * src.fps / FPS).astype(int), src.frames.shape[0] - 1)
    frames = src.frames[pick]
    lm, found = landmarks.detect(frames)
    if not found.any():
        raise DataError(f"{path}: no face found in any of its {n_out} frames")

    centres = np.full((n_out, 2), np.nan)
    axes = np.full((n_out, 2), np.nan)
    for i in np.flatnonzero(found):
        centres[i], axes[i] = align.square_from_landmarks(lm[i])
    centres = align.smooth_track(centres, found, smooth_sigma)
    axes = align.smooth_track(axes, found, smooth_sigma)

    out_frames = np.empty((n_out, size, size, 3), np.uint8)
    out_lm = np.full((n_out, landmarks.N_LANDMARKS, 3), np.nan, np.float32)
    masks = np.zeros((n_out, size, size), np.uint8)
    crops = np.empty((n_out, 2, 3), np.float32)
    rot_cam = np.empty((n_out, 3, 3))
    for i in range(n_out):
        m = align.similarity(centres[i], axes[i], size)
        crops[i] = m
        out_frames[i] = align.warp(frames[i], m, size)
        if found[i]:
            scale = np.linalg.norm(m[0, :2])
            xy = lm[i, :, :2] @ m[:, :2].T + m[:, 2]
            out_lm[i] = np.concatenate([xy, lm[i, :, 2:] * scale], 1)
            masks[i] = geometry.masks_from_landmarks(out_lm[i], size)
            # Pose in the aligned (virtual) camera, so it matches the stored frames.
            rot_cam[i] = geometry.head_rotation(out_lm[i])
    # Frames without a face borrow the nearest valid pose.
    valid_idx = np.flatnonzero(found)
    nearest = valid_idx[np.abs(np.arange(n_out)[:, None] - valid_idx[None, :]).argmin(1)]
    rot_cam = rot_cam[nearest]

    cam_world = camera.front_camera()
    head_pose = np.tile(np.eye(4), (n_out, 1, 1))
    head_pose[:, :3, :3] = cam_world[:3, :3] @ rot_cam  # head -> camera -> world
    c2w = np.linalg.inv(head_pose) @ cam_world
    meta = {
        "c2w": c2w.astype(np.float32),
        "K": camera.intrinsics(size).astype(np.float32),  # nominal: the real lens is unknown
        "head_pose": head_pose.astype(np.float32),
        "camera_world": cam_world.astype(np.float32),
        "landmarks": out_lm,
        "valid": found,
        "masks": masks,
        "crop": crops,
        "source_index": pick.astype(np.int32),
        "source_fps": np.float32(src.fps),
    }
    return Processed(out_frames, src.audio, meta, int((~found).sum()))


def write_processed(folder: str, clip: Processed, crf: int = 16) -> None:
    """Write the clip folder under a temporary name, then rename it into place."""
    from ..synthtalk.generate import write_clip

    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    with atomic_directory(folder) as tmp:
        write_clip(tmp, {"frames": clip.frames, "audio": clip.audio, "view_frames": [], "meta": clip.meta}, crf)
