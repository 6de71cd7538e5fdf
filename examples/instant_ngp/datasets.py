"""A NeRF-synthetic (Blender format) loader: every image of a split in memory, batches of
random rays for training and whole images for evaluation."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from PIL import Image


def load_split(root: str, split: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(N, H, W, 4) uint8 RGBA images, (N, 4, 4) camera-to-world poses, focal length in pixels."""
    path = os.path.join(root, f"transforms_{split}.json")
    with open(path) as f:
        meta = json.load(f)
    images, poses = [], []
    for frame in meta["frames"]:
        file = os.path.join(root, frame["file_path"] + ".png")
        images.append(np.asarray(Image.open(file).convert("RGBA")))
        poses.append(np.asarray(frame["transform_matrix"], dtype=np.float32))
    images = torch.from_numpy(np.stack(images))
    width = images.shape[2]
    focal = 0.5 * width / math.tan(0.5 * float(meta["camera_angle_x"]))
    return images, torch.from_numpy(np.stack(poses)), focal


class SubjectLoader:
    """Rays of one split. ``background`` is "white", "black" or "random" (a random colour
    per ray, so the field cannot hide the background in its colours)."""

    def __init__(self, root: str, split: str, num_rays: int | None = None, background: str = "white", device="cpu"):
        images, poses, self.focal = load_split(root, split)
        self.images = images.to(device)
        self.poses = poses.to(device)
        self.num_rays = num_rays
        self.background = background
        self.height, self.width = images.shape[1:3]
        self.device = device

    def __len__(self) -> int:
        return len(self.images)

    def _rays(self, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
        # OpenGL camera: x right, y up, looking down -z; pixel centres at +0.5.
        camera = torch.stack(
            (
                (x + 0.5 - 0.5 * self.width) / self.focal,
                -(y + 0.5 - 0.5 * self.height) / self.focal,
                -torch.ones_like(x, dtype=torch.float32),
            ),
            dim=-1,
        )
        pose = self.poses[index]
        directions = (pose[..., :3, :3] @ camera[..., None]).squeeze(-1)
        viewdirs = directions / directions.norm(dim=-1, keepdim=True)
        origins = pose[..., :3, 3].expand_as(viewdirs)
        return origins, viewdirs

    def _pixels(self, index, x, y):
        rgba = self.images[index, y, x].float() / 255
        if self.background == "random":
            background = torch.rand(rgba.shape[:-1] + (3,), device=self.device)
        else:
            background = torch.full(
                rgba.shape[:-1] + (3,), 1.0 if self.background == "white" else 0.0, device=self.device
            )
        pixels = rgba[..., :3] * rgba[..., 3:] + background * (1 - rgba[..., 3:])
        return pixels, background

    def random_rays(self) -> dict:
        n = self.num_rays
        index = torch.randint(0, len(self.images), (n,), device=self.device)
        x = torch.randint(0, self.width, (n,), device=self.device)
        y = torch.randint(0, self.height, (n,), device=self.device)
        origins, viewdirs = self._rays(index, x, y)
        pixels, background = self._pixels(index, x, y)
        return {"origins": origins, "viewdirs": viewdirs, "pixels": pixels, "color_bkgd": background}

    def image(self, k: int) -> dict:
        y, x = torch.meshgrid(
            torch.arange(self.height, device=self.device), torch.arange(self.width, device=self.device), indexing="ij"
        )
        index = torch.full_like(x, k)
        origins, viewdirs = self._rays(index, x, y)
        pixels, background = self._pixels(index, x, y)
        return {"origins": origins, "viewdirs": viewdirs, "pixels": pixels, "color_bkgd": background[0, 0]}
