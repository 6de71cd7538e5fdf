"""TEST DOUBLE of the model interface that ``s3d_fast.render`` codes against.

Not the model: a stand-in with exactly the interface of ``s3d_fast.model`` that the
renderer uses (see the docstring of ``s3d_fast/render/api.py``), so the render command, API
and failure paths are tested before/without a trained network. It checks every argument
it receives against the interface's contract (types, shapes, dtypes, device, value ranges)
and draws frames that depend visibly on what drives them, so tests can see that:
  - the source image reaches the model (the background is the source's mean colour);
  - the camera does (a bright bar at a column set by the camera's yaw about the head);
  - the audio does (a box whose brightness is the frame's audio-token energy).
Its "checkpoint" is a folder holding ``double.json`` ({"format_version": 1, ...});
another format version raises an S3DError, as the real checkpoint loader does.
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import numpy as np
import torch

from s3d_fast.errors import S3DError

FORMAT_VERSION = 1
STAGES = ("deformation", "marching", "decoder", "compositing", "super-resolution")


def write_checkpoint(
    folder, input_resolution=64, output_resolution=64, nerf_resolution=16, format_version=FORMAT_VERSION
):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "double.json"), "w") as fh:
        json.dump(
            {
                "format_version": format_version,
                "input_resolution": input_resolution,
                "output_resolution": output_resolution,
                "nerf_resolution": nerf_resolution,
            },
            fh,
        )
    return str(folder)


def load_double(path, device):
    """Stands in for ``s3d_fast.model.load_model(path, device)``."""
    cfg_path = os.path.join(os.fspath(path), "double.json")
    if not os.path.isfile(cfg_path):
        raise S3DError(f"{path}: not a checkpoint (test double)")
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    if cfg["format_version"] != FORMAT_VERSION:
        raise S3DError(f"{path}: checkpoint format version {cfg['format_version']}, this code reads {FORMAT_VERSION}")
    assert isinstance(device, torch.device)
    return RenderModelDouble(cfg["input_resolution"], cfg["output_resolution"], cfg["nerf_resolution"], device)


def _check(t, shape, dtype, device, name):
    assert isinstance(t, torch.Tensor), f"{name} must be a torch.Tensor, got {type(t)}"
    assert tuple(t.shape) == tuple(shape), f"{name}: expected shape {shape}, got {tuple(t.shape)}"
    assert t.dtype == dtype, f"{name}: expected {dtype}, got {t.dtype}"
    assert t.device.type == device.type, f"{name}: on {t.device}, model on {device}"


def _check_rigid(c2w, name):
    rot = c2w[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-4), f"{name}: not rotations"
    assert torch.allclose(c2w[:, 3].double(), torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(c2w.shape[0], 4))


class RenderModelDouble:
    TOKEN_DIM = 8

    def __init__(self, input_resolution, output_resolution, nerf_resolution, device):
        self.config = SimpleNamespace(
            model=SimpleNamespace(output_resolution=output_resolution, nerf_resolution=nerf_resolution)
        )
        self.input_resolution = input_resolution
        self.device = device
        self.calls = {"prepare_source": 0, "adapt": [], "bake": 0, "audio_tokens": [], "render_frames": []}

    def prepare_source(self, image, mask, c2w, K, keep_photo=False, geometry=None, frontal=None):
        r = self.input_resolution
        _check(image, (1, 3, r, r), torch.float32, self.device, "image")
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0, "image must be in [0, 1]"
        if mask is not None:
            _check(mask, (1, r, r), torch.int64, self.device, "mask")
            assert int(mask.min()) >= 0 and int(mask.max()) <= 3, "mask labels are 0..3"
        _check(c2w, (1, 4, 4), torch.float32, self.device, "c2w")
        _check(K, (1, 3, 3), torch.float32, self.device, "K")
        _check_rigid(c2w, "source c2w")
        if frontal is not None:
            assert keep_photo and geometry is not None, "a frontal camera is for a kept photo with its geometry"
            _check(frontal[0], (1, 4, 4), torch.float32, self.device, "frontal c2w")
            _check_rigid(frontal[0], "frontal c2w")
        assert abs(float(K[0, 0, 2]) - r / 2) < 0.05 * r, "K must be in pixels of the input resolution"
        self.calls["prepare_source"] += 1
        return {"image": image, "mask": mask, "c2w": c2w, "K": K, "keep_photo": keep_photo}

    def adapt(self, src, rest_tokens, steps, on_step=None):
        assert set(src) == {"image", "mask", "c2w", "K", "keep_photo"}
        _check(rest_tokens, (1, self.TOKEN_DIM), torch.float32, self.device, "rest tokens")
        assert isinstance(steps, int) and steps > 0, f"adapt is asked for a positive number of steps, got {steps!r}"
        self.calls["adapt"].append(steps)
        for done in range(1, steps + 1):
            if on_step is not None:
                on_step(done, steps)
        return src, None

    def bake(self, src):
        assert set(src) == {"image", "mask", "c2w", "K", "keep_photo"}
        self.calls["bake"] += 1
        return {"colour": src["image"].mean(dim=(2, 3))[0]}  # (3,)

    def audio_tokens(self, mel):
        assert mel.ndim == 3 and mel.shape[1:] == (80, 16), f"mel must be (T, 80, 16), got {tuple(mel.shape)}"
        _check(mel, mel.shape, torch.float32, self.device, "mel")
        self.calls["audio_tokens"].append(int(mel.shape[0]))
        energy = (mel.mean(dim=(1, 2)) + 4.0) / 8.0  # log-mel lives in [-4, 4]
        return energy[:, None].expand(-1, self.TOKEN_DIM).contiguous()

    def render_frames(self, baked, tokens, c2w, K):
        b = tokens.shape[0]
        r = self.config.model.output_resolution
        _check(tokens, (b, self.TOKEN_DIM), torch.float32, self.device, "tokens")
        _check(c2w, (b, 4, 4), torch.float32, self.device, "c2w")
        _check(K, (b, 3, 3), torch.float32, self.device, "K")
        _check_rigid(c2w, "c2w")
        assert abs(float(K[0, 0, 2]) - r / 2) < 0.05 * r, "K must be in pixels of the output resolution"
        self.calls["render_frames"].append(b)
        t0 = time.perf_counter()
        rgb = baked["colour"].view(1, 3, 1, 1).expand(b, 3, r, r).clone()
        # Camera: the yaw of the camera position about the head's +y axis moves a bar.
        pos = c2w[:, :3, 3]
        yaw = torch.atan2(pos[:, 0], pos[:, 2])  # radians, 0 = in front
        col = ((yaw / np.pi * 0.5 + 0.5) * (r - 1)).round().long()
        cols = torch.arange(r, device=self.device)
        rgb[:, 1] = torch.where((cols[None, None, :] - col[:, None, None]).abs() <= 1, 1.0, rgb[:, 1])
        # Audio: the "mouth" box brightness is the token energy.
        lo, hi = r // 2, r // 2 + r // 8
        rgb[:, 0, lo:hi, lo:hi] = tokens[:, 0].view(b, 1, 1).clamp(0, 1)
        dt = (time.perf_counter() - t0) / len(STAGES)
        return {"rgb": rgb, "timings": {s: dt for s in STAGES}}
