"""Shared fixtures of the render tests: the test-double model plugged into the renderer's
single model seam (``s3d_fast.render.api._load_model``). When the real model lands, a tiny
real checkpoint can replace ``render_checkpoint`` and the monkeypatch can go."""

import numpy as np
import pytest
import render_model_double as double

from s3d_fast.data.synthtalk import camera
from s3d_fast.render import api
from s3d_fast.render.source import write_sidecar


@pytest.fixture
def render_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "_load_model", double.load_double)
    return double.write_checkpoint(tmp_path / "ckpt")


def write_dataset_frame(path, size=64, seed=0):
    """A fake aligned data-set frame with its camera sidecar (no face needed)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(img).save(path)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    c2w = np.linalg.inv(camera.pose(5.0, 0.0, 0.0)) @ camera.front_camera()
    write_sidecar(path, c2w, camera.intrinsics(size), mask)
    return str(path), img, c2w


def write_speech(path, seconds=0.5, rate=16000):
    from s3d_fast.data import audio

    t = np.arange(int(seconds * rate)) / rate
    # Loud then silent halves, so the audio-driven box of the double changes over time.
    x = np.where(t < seconds / 2, 0.5 * np.sin(2 * np.pi * 300 * t), 0.0).astype(np.float32)
    audio.write_wav(path, x, rate)
    return str(path), x
