"""examples/instant_ngp: the scene it writes is a NeRF-synthetic dataset whose cameras
agree with its pictures, and the training script, written against nerfacc and
tinycudann, runs unchanged through `python -m s3d_fast.compat` and learns the scene."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aids.instant_ngp import EXAMPLE, load_example


@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.fixture(scope="module")
def small_scene(example, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("still_life"))
    example["make_scene"].make_scene(folder, size=32, counts=(12, 2, 3))
    return folder


def test_scene_is_in_the_blender_format(small_scene):
    for split, count in (("train", 12), ("val", 2), ("test", 3)):
        with open(os.path.join(small_scene, f"transforms_{split}.json")) as f:
            meta = json.load(f)
        assert meta["camera_angle_x"] == pytest.approx(0.6911112070083618)
        assert len(meta["frames"]) == count
        for frame in meta["frames"]:
            pose = np.asarray(frame["transform_matrix"])
            assert pose.shape == (4, 4)
            np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
            np.testing.assert_allclose(pose[3], [0, 0, 0, 1])
            # OpenGL: the camera looks down its -z axis, at the object's centre.
            looking = -pose[:3, 2]
            np.testing.assert_allclose(looking, -pose[:3, 3] / np.linalg.norm(pose[:3, 3]), atol=1e-9)
            image = Image.open(os.path.join(small_scene, frame["file_path"] + ".png"))
            assert image.mode == "RGBA" and image.size == (32, 32)


def test_pictures_match_their_cameras(example, small_scene):
    """A ray the loader makes through an opaque pixel hits the scene; through a
    transparent one it misses: writer and reader agree on the camera convention."""
    loader = example["datasets"].SubjectLoader(small_scene, "train", background="black")
    scene = example["scene"]
    alpha = loader.images[..., 3]
    assert bool((alpha == 255).any()) and bool((alpha == 0).any())
    assert bool(((alpha > 0) & (alpha < 255)).any())  # antialiased edges
    for k in range(3):
        data = loader.image(k)
        _, hit = scene.sphere_trace(data["origins"].reshape(-1, 3), data["viewdirs"].reshape(-1, 3))
        a = alpha[k].reshape(-1)
        assert bool(hit[a == 255].all())
        assert not bool(hit[a == 0].any())


def test_scene_has_highlights_that_move_with_the_viewer(example):
    """The glossy ball's top is much brighter seen along the light's mirror direction."""
    scene = example["scene"]
    point = torch.tensor([[0.5, 0.32, -0.45 + 0.37]])  # the top of the ball: normal +z
    light = scene.LIGHT
    mirror = torch.stack((-light[0], -light[1], light[2]))
    elsewhere = torch.nn.functional.normalize(torch.tensor([0.6, 0.6, 0.5]), dim=0)
    colours = []
    for away in (mirror, elsewhere):
        eye = point + 3.0 * away
        rgb, coverage = scene.shade(eye, -away[None])
        assert coverage.item() == 1.0
        colours.append(rgb)
    assert (colours[0] - colours[1]).min() > 0.3, colours


def test_training_script_runs_unchanged_through_the_drop_ins(small_scene, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "s3d_fast.compat", "--force", os.path.join(EXAMPLE, "train.py")]
    # Stopped by steps, not minutes, so that what it learns does not depend on the machine's load.
    command += ["--data", small_scene, "--minutes", "30", "--steps", "60", "--eval-at", "--out", str(out)]
    command += ["--grid-resolution", "32", "--target-samples", "8192"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "test PSNR" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    results = metrics["results"]
    assert len(results) == 1 and results[0]["steps"] == 60
    # Better than painting every pixel the white background.
    test = torch.from_numpy(
        np.stack([np.asarray(Image.open(os.path.join(small_scene, "test", f"r_{k}.png"))) for k in range(3)])
    )
    rgba = test.float() / 255
    target = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    white_psnr = -10 * math.log10(float(((target - 1) ** 2).mean()))
    assert results[-1]["test_psnr"] > white_psnr + 3, (results, white_psnr)
    assert (out / "test_0_step60.png").exists()
