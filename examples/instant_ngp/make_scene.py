"""Render the example's scene (scene.py) into a folder in the NeRF-synthetic (Blender)
format: ``transforms_{train,val,test}.json`` with each frame's camera-to-world matrix in
the OpenGL convention (the camera looks down its -z, y up) and ``camera_angle_x``, and
RGBA PNGs with straight alpha, so any NeRF code base reads it as it reads ``lego``.

    python examples/instant_ngp/make_scene.py --out data/still_life [--size 200]

Train and validation views are random on the upper hemisphere; the test views orbit at 30
degrees elevation, as the Blender scenes' test renders do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene  # noqa: E402

CAMERA_ANGLE_X = 0.6911112070083618  # the Blender scenes' horizontal field of view
RADIUS = 4.0  # camera distance from the object's centre, as in the Blender scenes
SUPERSAMPLE = 3  # rays per pixel side: antialiased edges, as Blender's renders have
SPLITS = ("train", "val", "test")


def look_at(position: np.ndarray) -> np.ndarray:
    """Camera-to-world matrix (OpenGL) of a camera at ``position`` looking at the origin, z up."""
    back = position / np.linalg.norm(position)
    right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, position
    return pose


def hemisphere_poses(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    azimuth = rng.uniform(0, 2 * math.pi, n)
    elevation = np.arcsin(rng.uniform(math.sin(math.radians(5)), math.sin(math.radians(80)), n))
    return [look_at(RADIUS * spherical(a, e)) for a, e in zip(azimuth, elevation)]


def orbit_poses(n: int, elevation_degrees: float = 30.0) -> list[np.ndarray]:
    e = math.radians(elevation_degrees)
    return [look_at(RADIUS * spherical(2 * math.pi * k / n, e)) for k in range(n)]


def spherical(azimuth: float, elevation: float) -> np.ndarray:
    return np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )


def render_view(pose: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 4) uint8 RGBA, straight alpha, sRGB-encoded colour."""
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    fine = size * SUPERSAMPLE
    coords = (torch.arange(fine, dtype=torch.float64) + 0.5) / SUPERSAMPLE
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    camera = torch.stack(((u - 0.5 * size) / focal, -(v - 0.5 * size) / focal, -torch.ones_like(u)), -1)
    rotation = torch.from_numpy(pose[:3, :3])
    directions = torch.nn.functional.normalize(camera.reshape(-1, 3) @ rotation.T, dim=-1).float()
    origins = torch.from_numpy(pose[:3, 3]).float().expand_as(directions)
    rgb, alpha = scene.shade(origins.contiguous(), directions)
    rgb = rgb.clamp(0, 1).pow(1 / 2.2)  # stored sRGB-like, as renders are
    premultiplied = (rgb * alpha[:, None]).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean((1, 3))
    coverage = alpha.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean((1, 3))
    straight = premultiplied / coverage.clamp(min=1e-6)[..., None]
    rgba = torch.cat((straight, coverage[..., None]), -1)
    return (rgba.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def write_split(out: str, split: str, poses: list[np.ndarray], size: int, progress: bool) -> None:
    os.makedirs(os.path.join(out, split), exist_ok=True)
    frames = []
    for k, pose in enumerate(poses):
        name = f"./{split}/r_{k}"
        path = os.path.join(out, split, f"r_{k}.png")
        fd, temporary = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(path))
        os.close(fd)
        Image.fromarray(render_view(pose, size), "RGBA").save(temporary)
        os.replace(temporary, path)
        frames.append({"file_path": name, "rotation": 0.0, "transform_matrix": pose.tolist()})
        if progress:
            print(f"\r{split}: {k + 1}/{len(poses)}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
    fd, temporary = tempfile.mkstemp(suffix=".json", dir=out)
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(temporary, os.path.join(out, f"transforms_{split}.json"))


def make_scene(out: str, size: int = 200, counts=(100, 10, 20), seed: int = 0, progress: bool = False) -> str:
    """Write the dataset into ``out`` (made if missing) and return it. Views are the same
    for the same counts and seed."""
    rng = np.random.default_rng(seed)
    poses = {
        "train": hemisphere_poses(counts[0], rng),
        "val": hemisphere_poses(counts[1], rng),
        "test": orbit_poses(counts[2]),
    }
    os.makedirs(out, exist_ok=True)
    for split in SPLITS:
        write_split(out, split, poses[split], size, progress)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="folder to write the dataset into")
    parser.add_argument("--size", type=int, default=200, help="image width and height in pixels (default 200)")
    parser.add_argument("--views", type=int, nargs=3, default=(100, 10, 20), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 8 or args.size > 2048:
        parser.error(f"--size must be in [8, 2048], got {args.size}")
    if min(args.views) < 1:
        parser.error("--views must all be at least 1")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    make_scene(args.out, args.size, tuple(args.views), args.seed, progress=True)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
