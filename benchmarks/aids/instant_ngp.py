"""The Instant-NGP example (examples/instant_ngp) loaded for tests and benchmarks: its
modules import ``tinycudann`` and ``nerfacc`` as user code does, so they are imported
here with those names bound to the drop-ins for the import only, leaving the rest of the
process (which may compare against the real nerfacc) untouched."""

from __future__ import annotations

import importlib
import math
import os
import sys

import numpy as np
import torch

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "instant_ngp")
EXAMPLE = os.path.abspath(EXAMPLE)
_MODULES = ("scene", "make_scene", "datasets", "radiance_field", "rendering", "train")
_DROP_INS = {
    "tinycudann": "s3d_fast.compat.tinycudann",
    "nerfacc": "s3d_fast.compat.nerfacc",
    "nerfacc.estimators": "s3d_fast.compat.nerfacc.estimators",
    "nerfacc.estimators.occ_grid": "s3d_fast.compat.nerfacc.estimators.occ_grid",
}


def load_example() -> dict:
    """{module name: module} of the example, on the drop-ins."""
    saved = {name: sys.modules.get(name) for name in (*_DROP_INS, *_MODULES)}
    sys.path.insert(0, EXAMPLE)
    try:
        for name, drop_in in _DROP_INS.items():
            sys.modules[name] = importlib.import_module(drop_in)
        for name in _MODULES:
            sys.modules.pop(name, None)
        return {name: importlib.import_module(name) for name in _MODULES}
    finally:
        sys.path.remove(EXAMPLE)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def scene_occupancy(scene, resolution: int, aabb) -> torch.Tensor:
    """(resolution,)*3 bool: the cells the example's scene surfaces pass through, as a
    trained occupancy grid marks them."""
    low, high = torch.as_tensor(aabb[:3]), torch.as_tensor(aabb[3:])
    cell = (high - low) / resolution
    index = torch.arange(resolution)
    grid = torch.stack(torch.meshgrid(index, index, index, indexing="ij"), -1).reshape(-1, 3)
    centres = low + (grid + 0.5) * cell
    distance = scene.scene_distance(centres)
    return (distance.abs() < 0.5 * float(cell.norm())).reshape(resolution, resolution, resolution)


def scene_rays(make_scene, n_rays: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of ``n_rays`` random pixels of random training views (OpenGL cameras)."""
    rng = torch.Generator().manual_seed(seed)
    poses = torch.from_numpy(np.stack(make_scene.hemisphere_poses(100, np.random.default_rng(seed)))).float()
    focal = 0.5 * size / math.tan(0.5 * make_scene.CAMERA_ANGLE_X)
    view = torch.randint(0, len(poses), (n_rays,), generator=rng)
    u, v = torch.rand(n_rays, generator=rng) * size, torch.rand(n_rays, generator=rng) * size
    camera = torch.stack(((u - 0.5 * size) / focal, -(v - 0.5 * size) / focal, -torch.ones(n_rays)), -1)
    directions = torch.nn.functional.normalize((poses[view, :3, :3] @ camera[..., None]).squeeze(-1), dim=-1)
    return poses[view, :3, 3].contiguous(), directions.contiguous()
