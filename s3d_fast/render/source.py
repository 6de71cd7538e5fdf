"""The source image of a render: pixels, face mask and camera at the model's resolution.

Two kinds of source, told apart by one explicit rule:

* **A data-set frame** is an image with a *sidecar* next to it: ``<image stem>.npz``
  (e.g. ``face.png`` + ``face.npz``) holding ``c2w`` (4, 4) camera-to-head, ``K`` (3, 3)
  intrinsics in pixels of the image, and optionally ``mask`` (H, W) uint8 labels
  (0 background, 1 face, 2 lips, 3 mouth interior), as in docs/design.md section 5a. It is already an
  aligned crop with a known camera, so it is used as it is (only resized, with its
  intrinsics scaled, if its resolution is not the model's). The bundled demo image is one
  (``tools/make_demo_assets.py`` writes it from a SynthTalk held-out identity).
  ``write_sidecar`` writes one, e.g. for a frame taken out of a preprocessed clip.
* **Any other image is a photo**: it goes through the preprocessing pipeline's pieces
  (``s3d_fast.data.preprocess``): mediapipe face mesh -> FFHQ-style aligned crop ->
  landmark-hull masks -> head pose from the 3-D landmarks, placed in the same nominal
  front camera that ``s3d-fast preprocess`` gives real videos. No face: :class:`NoFaceError`.

A sidecar is never guessed from the pixels: a face that merely looks aligned still goes
through detection, which on an aligned crop is close to the identity anyway.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.errors import DataError
from ..data.npz import load_npz, save_npz
from ..data.preprocess import align, geometry, landmarks
from ..data.synthtalk import camera
from .cameras import check_c2w
from .errors import ImageLimitError, NoFaceError, SourceImageError

SIDECAR_SUFFIX = ".npz"
_MIN_PHOTO_SIDE = 32


@dataclass
class Source:
    """A prepared source at ``resolution``: ``image`` (R, R, 3) uint8 RGB, ``mask`` (R, R)
    uint8 labels or None, ``c2w`` (4, 4) camera-to-head, ``K`` (3, 3) in pixels of R."""

    image: np.ndarray
    mask: Optional[np.ndarray]
    c2w: np.ndarray
    K: np.ndarray
    kind: str  # "dataset-frame" | "photo"
    name: str = "image"
    faces: int = 1  # faces found in a photo (the one animated is ``face``)
    face: int = 1  # which, numbered from 1 left to right
    landmarks: Optional[np.ndarray] = None  # (478, 3) face mesh of a photo, in pixels of the crop

    @property
    def resolution(self) -> int:
        return int(self.image.shape[0])


def sidecar_path(image_path) -> str:
    stem, _ = os.path.splitext(os.fspath(image_path))
    return stem + SIDECAR_SUFFIX


# Larger images are refused before they are decoded: 8192^2, well above any camera's,
# and the decoded RGB (200 MB) still fits a small machine. PIL's own guard starts at 89 MP
# with only a warning.
MAX_IMAGE_PIXELS = 8192 * 8192


def read_image(path) -> np.ndarray:
    """Any image PIL reads, as uint8 (H, W, 3) RGB (alpha dropped, grey expanded, 16-bit
    grey scaled to 8 bits); larger than :data:`MAX_IMAGE_PIXELS` is refused undecoded."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SourceImageError(f"{path}: no such image file")
    return decode_image(path, MAX_IMAGE_PIXELS, path)


def decode_image(file, max_pixels: int, name: str) -> np.ndarray:
    """``file`` (a path or a binary file object) as uint8 RGB, its size checked before it is
    decoded: :class:`ImageLimitError` over ``max_pixels`` or for a decompression bomb,
    :class:`SourceImageError` when PIL cannot read it; messages start with ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLimitError(
                        f"{name}: {w}x{h} pixels is more than this reads ({max_pixels:,} pixels); scale it down"
                    )
                # convert() also forces the decode, so truncated files fail here
                return to_rgb8(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLimitError(f"{name}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SourceImageError(f"{name}: cannot read image ({exc})") from None


def to_rgb8(img: Image.Image) -> np.ndarray:
    """uint8 RGB; PIL's own conversion of 32-bit and 16-bit grey clips to 0..255 (a 16-bit
    photo becomes white), so those are scaled from 16 bits instead."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(img).astype(np.float64)
        grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, 2))
    return np.asarray(img.convert("RGB"), np.uint8).copy()


def write_sidecar(image_path, c2w: np.ndarray, K: np.ndarray, mask: Optional[np.ndarray] = None) -> str:
    """Write ``<image stem>.npz`` marking ``image_path`` as an aligned data-set frame."""
    path = sidecar_path(image_path)
    arrays = {"c2w": np.asarray(c2w, np.float32), "K": np.asarray(K, np.float32)}
    if mask is not None:
        arrays["mask"] = np.asarray(mask, np.uint8)
    save_npz(path, arrays)
    return path


def _read_sidecar(path: str, image_shape) -> dict:
    try:
        data = load_npz(path, what="image's camera sidecar")
    except DataError as exc:
        raise SourceImageError(str(exc)) from None
    for key, shape in (("c2w", (4, 4)), ("K", (3, 3))):
        if key not in data:
            raise SourceImageError(f"{path}: the camera sidecar lacks '{key}'")
        if data[key].shape != shape or data[key].dtype.kind not in "fiu" or not np.isfinite(data[key]).all():
            raise SourceImageError(f"{path}: '{key}' must be a finite {shape} array, got {data[key].shape}")
    check_c2w(data["c2w"][None], f"{path}: 'c2w'")
    if np.abs(data["c2w"][:3, 3]).max() > _MAX_CAMERA_DISTANCE:
        raise SourceImageError(f"{path}: 'c2w' puts the camera over {_MAX_CAMERA_DISTANCE:g} head boxes away")
    _check_intrinsics(np.asarray(data["K"], np.float64), image_shape, path)
    mask = data.get("mask")
    if mask is not None and mask.shape != tuple(image_shape[:2]):
        raise SourceImageError(f"{path}: 'mask' is {mask.shape}, the image is {tuple(image_shape[:2])}")
    return data


_MAX_CAMERA_DISTANCE = 1000.0


def _check_intrinsics(K: np.ndarray, image_shape, path: str) -> None:
    """A pinhole camera that can see the image: focal lengths from 1/100 to 100 times its
    side, principal point within half a side of the image, last row (0, 0, 1)."""
    side = float(max(image_shape[:2]))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (side / 100 <= fx <= 100 * side and side / 100 <= fy <= 100 * side):
        raise SourceImageError(
            f"{path}: 'K' focal lengths must be from {side / 100:g} to {100 * side:g} pixels, got {fx:g} and {fy:g}"
        )
    if not (-side / 2 <= cx <= 1.5 * side and -side / 2 <= cy <= 1.5 * side):
        raise SourceImageError(f"{path}: 'K' principal point ({cx:g}, {cy:g}) lies far outside the image")
    if not np.allclose(K[2], (0.0, 0.0, 1.0)) or abs(K[1, 0]) > 1e-6 or abs(K[0, 1]) > side:
        raise SourceImageError(f"{path}: 'K' is not a pinhole camera matrix (last row must be 0 0 1)")


def _resize(image: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:

    if image.shape[0] == size and image.shape[1] == size:
        return image
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(image).resize((size, size), resample))


def from_dataset_frame(image: np.ndarray, c2w, K, mask, resolution: int, name: str = "image") -> Source:
    """An aligned crop with a known camera, resized to ``resolution`` if needed."""
    h, w = image.shape[:2]
    if h != w:
        raise SourceImageError(f"{name}: a data-set frame must be square, got {w}x{h}")
    K = np.asarray(K, np.float64).copy()
    K[:2] *= resolution / float(h)  # pixels of the new resolution
    mask = None if mask is None else _resize(np.asarray(mask, np.uint8), resolution, nearest=True)
    return Source(_resize(image, resolution), mask, np.asarray(c2w, np.float64), K, "dataset-frame", name)


def from_photo(image: np.ndarray, resolution: int, name: str = "image", face: Optional[int] = None) -> Source:
    """Detect, align, mask and pose a face in a photo (the preprocessing pipeline's steps).

    With several faces, ``face`` picks one (numbered from 1, left to right); the default
    is the largest."""
    h, w = image.shape[:2]
    if min(h, w) < _MIN_PHOTO_SIDE:
        raise NoFaceError(f"no face found in {name} (the image is only {w}x{h} pixels)")
    faces = landmarks.detect_faces(image)
    if len(faces) == 0:
        raise NoFaceError(f"no face found in {name}")
    if face is None:
        face = 1 + max(range(len(faces)), key=lambda i: landmarks.face_area(faces[i]))
    elif not 1 <= face <= len(faces):
        found = f"{len(faces)} face" + ("s" if len(faces) > 1 else "")
        raise NoFaceError(f"--face {face}: {name} has {found} (numbered 1 to {len(faces)} from left to right)")
    lm = faces[face - 1]
    centre, axis = align.square_from_landmarks(lm)
    m = align.similarity(centre, axis, resolution)
    crop = align.warp(image, m, resolution)
    scale = np.linalg.norm(m[0, :2])
    lm_crop = np.concatenate([lm[:, :2] @ m[:, :2].T + m[:, 2], lm[:, 2:] * scale], 1)
    mask = geometry.masks_from_landmarks(lm_crop, resolution)
    # As in pipeline.process_video: the pose is measured in the aligned (virtual) camera,
    # and that camera is the nominal front camera, so camera-to-head = inv(head pose) @ cam.
    cam_world = camera.front_camera()
    head_pose = np.eye(4)
    head_pose[:3, :3] = cam_world[:3, :3] @ geometry.head_rotation(lm_crop)
    c2w = np.linalg.inv(head_pose) @ cam_world
    K = camera.intrinsics(resolution)
    return Source(crop, mask, c2w, K, "photo", name, faces=len(faces), face=face, landmarks=lm_crop.astype(np.float32))


def load_source(image, resolution: int, *, c2w=None, K=None, mask=None, face: Optional[int] = None) -> Source:
    """A :class:`Source` at ``resolution`` from a path or a uint8 (H, W, 3) array.

    With a path, a sidecar ``<stem>.npz`` makes it a data-set frame; with an array,
    passing ``c2w`` and ``K`` does. Otherwise the image is treated as a photo, and
    ``face`` picks one of several faces (numbered from 1, left to right; default the largest).
    """
    if isinstance(image, (str, os.PathLike)):
        name = os.fspath(image)
        pixels = read_image(name)
        side = sidecar_path(name)
        if c2w is None and os.path.isfile(side):
            data = _read_sidecar(side, pixels.shape)
            c2w, K, mask = data["c2w"], data["K"], data.get("mask")
    else:
        name = "the source image"
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, 2)
        if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint8:
            raise SourceImageError(f"the source image must be uint8 (H, W, 3) RGB, got {pixels.dtype} {pixels.shape}")
        pixels = np.ascontiguousarray(pixels[..., :3])
    if (c2w is None) != (K is None):
        raise SourceImageError("give both c2w and K for a data-set frame, or neither for a photo")
    if c2w is not None:
        if face not in (None, 1):
            raise SourceImageError(f"--face {face}: {name} is an aligned data-set frame with one face")
        return from_dataset_frame(pixels, c2w, K, mask, resolution, name)
    return from_photo(pixels, resolution, name, face)
