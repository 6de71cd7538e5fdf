"""``s3d-fast eval --portraits``: photos spoken without a ground-truth video.

Every portrait in a folder is baked once and rendered speaking the given speech, and once
silent, at its own camera, and speaking again with the camera turned by each of
:data:`YAWS` degrees both ways: towards the face's front (for a turned face, the way that
brings the far side the photo hides into view) and away from it. The figures:

* silent, at the source camera: PSNR over the face (its landmark hull) against the
  aligned photo;
* speaking: PSNR of the upper face (above the nose tip) against the photo, and between
  consecutive frames (flicker: the camera is still); the inner lips' gap read by
  mediapipe, correlated with the speech's loudness; the share of a 2x/4x pixel grid in
  the lower face's spectrum, over the photo's;
* identity: dlib's face-embedding distance from the photo, at the source view and at each
  turn (a frame without a face counts 1.5), and the frames without one.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from PIL import Image

from .. import atomic
from ..data.preprocess.landmarks import detect
from ..errors import S3DError
from ..metrics import pearson
from ..metrics.identity import identity_distance, reference_embedding
from ..metrics.portrait import grid_energy, lip_gap, masked_psnr, speech_envelope
from ..render.api import Renderer, load_speech
from ..render.cameras import camera_yaw
from .identity import IDENTITY_EVERY

YAWS = (15.0, 30.0)
SIDES = ("front", "away")  # the turn towards the face's front, then away from it
SILENT_SECONDS = 1.0

GRID_EVERY = 10
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
NOSE_TIP = 1

COLUMNS = [
    ("source yaw", "source_yaw", "{:.0f}"),
    ("silent face PSNR", "silent_face_psnr", "{:.2f}"),
    ("upper face PSNR", "upper_face_psnr", "{:.2f}"),
    ("upper flicker PSNR", "upper_flicker_psnr", "{:.2f}"),
    ("mouth r", "mouth_r", "{:.3f}"),
    ("mouth r outer", "mouth_r_outer", "{:.3f}"),
    ("grid / photo", "grid_ratio", "{:.2f}"),
    ("identity 0", "identity_0", "{:.3f}"),
    *[(f"identity {y:g} {side}", f"identity_{y:g}_{side}", "{:.3f}") for side in SIDES for y in YAWS],
    ("no face", "frames_without_face", "{:d}"),
    ("bake s", "bake_seconds", "{:.2f}"),
    ("fps", "fps", "{:.1f}"),
]


def portrait_paths(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise S3DError(f"--portraits {folder}: no such folder")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise S3DError(f"--portraits {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    return paths


def regions(source) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The face, the upper face (above the nose tip) and the lower face's box of a photo."""
    face = source.mask > 0
    lm = source.landmarks
    if lm is None:  # an aligned data-set frame: find the nose with the face mesh
        lm, found = detect(source.image[None])
        if not found[0]:
            raise S3DError(f"{source.name}: no face found")
        lm = lm[0]
    nose = int(round(float(lm[NOSE_TIP, 1])))
    upper = face.copy()
    upper[nose:] = False
    ys, xs = np.nonzero(face)
    box = (nose, int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
    return face, upper, box


def evaluate_portrait(
    renderer: Renderer, path: str, speech, silence, log, keep_photo: bool = True, adapt_steps: int = 0
) -> tuple[dict, np.ndarray]:
    identity = renderer.bake(path, keep_photo=keep_photo, adapt_steps=adapt_steps)
    src = identity.source
    photo = src.image
    size = photo.shape[0]
    face, upper, box = regions(src)
    row = {"portrait": os.path.basename(path), "faces": src.faces, "source_yaw": camera_yaw(src.c2w)}
    row["bake_seconds"] = identity.bake_seconds

    silent = list(identity.render(silence, size=size))
    row["silent_face_psnr"] = float(np.mean([masked_psnr(f, photo, face) for f in silent]))
    log(f"{row['portrait']}: silent done")
    start = time.perf_counter()
    frames = list(identity.render(speech, size=size))
    row["fps"] = len(frames) / (time.perf_counter() - start)
    row["upper_face_psnr"] = float(np.mean([masked_psnr(f, photo, upper) for f in frames]))
    row["upper_flicker_psnr"] = float(np.mean([masked_psnr(a, b, upper) for a, b in zip(frames, frames[1:])]))
    gap, outer, found = lip_gap(frames)
    envelope = speech_envelope(speech.samples, len(frames), speech.fps, speech.sample_rate)
    enough = found.sum() > 2
    row["mouth_r"] = pearson(gap[found], envelope[found]) if enough else float("nan")
    row["mouth_r_outer"] = pearson(outer[found], envelope[found]) if enough else float("nan")
    photo_grid = grid_energy(photo, box)
    row["grid_ratio"] = float(np.mean([grid_energy(f, box) for f in frames[::GRID_EVERY]]) / max(photo_grid, 1e-12))
    missing = 0
    reference = reference_embedding(photo)  # once for every view
    row["identity_0"], m = identity_distance(reference, frames[::IDENTITY_EVERY])
    missing += m
    turned = []
    front = -1.0 if row["source_yaw"] > 0 else 1.0  # the sign of yaw that turns the camera frontwards
    for side, sign in zip(SIDES, (front, -front)):
        for yaw in YAWS:
            poses = identity.cameras(len(frames), yaw=sign * yaw)
            turned.append(list(identity.render(speech, pose=poses, size=size)))
            row[f"identity_{yaw:g}_{side}"], m = identity_distance(reference, turned[-1][::IDENTITY_EVERY])
            missing += m
            log(f"{row['portrait']}: {yaw:g} degrees {side} done")
    row["frames_without_face"] = int(missing)
    # The picture: photo, silent, speaking (the most open mouth), then each turn at that frame.
    open_frame = int(np.nanargmax(np.where(found, gap, -np.inf))) if found.any() else len(frames) // 2
    picture = np.concatenate([photo, silent[0], frames[open_frame]] + [t[open_frame] for t in turned], 1)
    return row, picture


def format_table(rows: list[dict]) -> str:
    head = "| portrait | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    mean = {k: float(np.nanmean([r[k] for r in rows])) for _, k, _ in COLUMNS}
    mean["frames_without_face"] = int(sum(r["frames_without_face"] for r in rows))
    for row in rows + [dict(mean, portrait="**mean**")]:
        cells = [fmt.format(row[key]) for _, key, fmt in COLUMNS]
        lines.append(f"| {row['portrait']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_portraits(args) -> int:
    paths = portrait_paths(args.portraits)
    speech = load_speech(args.speech)
    silence = load_speech(np.zeros(int(SILENT_SECONDS * speech.sample_rate), np.float32))
    renderer = Renderer(args.checkpoint, args.device)

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    rows, pictures = [], []
    for path in paths:
        row, picture = evaluate_portrait(
            renderer, path, speech, silence, log, keep_photo=not args.model_only, adapt_steps=args.adapt_steps
        )
        rows.append(row)
        pictures.append(picture)
    table = format_table(rows)
    print(table)
    if args.out is not None:
        out = args.out
        atomic.write_text(os.path.join(out, "portraits.json"), json.dumps({"portraits": rows}, indent=1) + "\n")
        atomic.write_text(os.path.join(out, "portraits.md"), table + "\n")
        with atomic.atomic_path(os.path.join(out, "portraits.png")) as tmp:
            Image.fromarray(np.concatenate(pictures, 0)).save(tmp, format="PNG")
    return 0
