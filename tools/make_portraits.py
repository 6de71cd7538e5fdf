"""Write the real portraits and the speech that the photo figures are measured on.

    python tools/make_portraits.py OUT     # OUT/photos/*.png and OUT/speech.wav
    s3d-fast eval --portraits OUT/photos --speech OUT/speech.wav --out OUT/eval

The photos are the ones packages on the registries ship (tests/registry_photos.py):
scikit-image's astronaut and matplotlib's Grace Hopper whole, and the six faces of
insightface's group photo (faces numbered left to right), each cut out as a square 2.2
times its face mesh's extent around the mesh's centre. The speech is espeak-ng's voice
reading SENTENCE. Needs the test extra (scikit-image, mediapipe), insightface installed
without its dependencies, and espeak-ng.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # run from a clone without installing
sys.path.insert(0, os.path.join(ROOT, "tests"))  # registry_photos: the photos the tests use

from PIL import Image  # noqa: E402

from s3d_fast.atomic import atomic_path  # noqa: E402
from s3d_fast.errors import S3DError  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog. We are testing how the mouth moves with real speech today."
GROUP_FACES = 6
CROP_SCALE = 2.2  # the square's side over the face mesh's larger extent


def face_square(landmarks: np.ndarray, shape: tuple[int, int], scale: float = CROP_SCALE) -> tuple[int, int, int]:
    """(x0, y0, side) of the square ``scale`` times the face mesh's larger extent around
    its centre, moved inside the photo where it would cross an edge and shrunk only where
    the photo is smaller than it."""
    xy = landmarks[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre = (lo + hi) / 2
    side = int(round(min(scale * float((hi - lo).max()), shape[0], shape[1])))
    x0 = int(np.clip(round(centre[0] - side / 2), 0, shape[1] - side))
    y0 = int(np.clip(round(centre[1] - side / 2), 0, shape[0] - side))
    return x0, y0, side


def group_faces(photo: np.ndarray, count: int = GROUP_FACES) -> list[np.ndarray]:
    """The group photo's faces, left to right, each cut out by :func:`face_square`."""
    from s3d_fast.data.preprocess.landmarks import detect_faces

    faces = detect_faces(photo)
    if len(faces) != count:
        raise S3DError(f"found {len(faces)} faces in the group photo where {count} were expected")
    crops = []
    for landmarks in faces:
        x0, y0, side = face_square(landmarks, photo.shape[:2])
        crops.append(photo[y0 : y0 + side, x0 : x0 + side])
    return crops


def speak(text: str, path: str) -> None:
    """``text`` read by espeak-ng into the wav at ``path`` (written whole, then renamed)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise S3DError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    with atomic_path(path) as tmp:
        done = subprocess.run([exe, "-w", tmp, text], capture_output=True, check=False)
        if done.returncode != 0:
            raise S3DError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()[:200]}")


def write_png(image: np.ndarray, path: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def make_portraits(out: str) -> list[str]:
    """Write OUT/photos/ and OUT/speech.wav; return the photos' paths."""
    import registry_photos

    photos = {"astronaut": registry_photos.astronaut(), "hopper": registry_photos.grace_hopper()}
    for n, crop in enumerate(group_faces(registry_photos.group_photo()), start=1):
        photos[f"group_face{n}"] = crop
    folder = os.path.join(out, "photos")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, image in photos.items():
        paths.append(os.path.join(folder, f"{name}.png"))
        write_png(image, paths[-1])
    speak(SENTENCE, os.path.join(out, "speech.wav"))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for photos/ and speech.wav")
    args = parser.parse_args(argv)
    try:
        paths = make_portraits(args.out)
    except (S3DError, RuntimeError) as exc:  # RuntimeError: insightface (the group photo) is missing
        print(f"make_portraits: {exc}", file=sys.stderr)
        return 1
    speech = os.path.join(args.out, "speech.wav")
    print(f"{len(paths)} photos in {os.path.join(args.out, 'photos')}, speech in {speech}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
