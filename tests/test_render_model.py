"""`s3d-fast render` and the Renderer API on the REAL model (a tiny, untrained
checkpoint): the plumbing tests in test_render_cli.py use a drawing double; these check
that the actual generator's real-time path goes through end to end."""

import numpy as np
import pytest
import torch
from model_helpers import tiny_config
from render_fixtures import write_dataset_frame, write_speech

from s3d_fast.checkpoint import save_checkpoint
from s3d_fast.cli import main
from s3d_fast.config import config_to_dict
from s3d_fast.data import video
from s3d_fast.model import S3DNeRF


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_render")
    cfg = tiny_config()
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model)
    with torch.no_grad():
        model.decoder.mlp[-1].bias[0] = 1.0  # some density, so the occupancy grid is not empty
    ckpt = save_checkpoint(
        root / "ckpt", model_state=model.state_dict(), config=config_to_dict(cfg), step=1, extra={"kind": "generator"}
    )
    image, _, _ = write_dataset_frame(root / "frame.png", size=64)
    speech, samples = write_speech(root / "speech.wav", seconds=0.4)
    return {"root": root, "ckpt": str(ckpt), "image": image, "speech": speech, "samples": samples}


def test_cli_renders_the_real_model_with_an_orbit(real, capsys):
    out = real["root"] / "orbit.mp4"
    rc = main(
        [
            "render",
            "--image",
            real["image"],
            "--audio",
            real["speech"],
            "--checkpoint",
            real["ckpt"],
            "--out",
            str(out),
            "--orbit",
            "20",
            "--batch",
            "4",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    assert rc == 0
    v = video.read_video(str(out))
    assert v.frames.shape == (10, 64, 64, 3)  # 0.4 s at 25 fps, the model's 64^2 output
    assert v.audio is not None and abs(v.audio.shape[0] - real["samples"].shape[0]) <= 1
    assert v.frames.std() > 1  # an image, not a blank
    printed = capsys.readouterr().out
    for stage in ("marching", "deformation", "decoder", "compositing", "super-resolution"):
        assert stage in printed


def test_api_streams_frames_of_the_real_model(real):
    from s3d_fast.render import Renderer

    renderer = Renderer(real["ckpt"], device="cpu")
    identity = renderer.bake(real["image"])
    frames = list(identity.render(real["speech"], batch=3))
    assert len(frames) == 10 and frames[0].dtype == np.uint8 and frames[0].shape == (64, 64, 3)
    assert identity.stats.frames == 10
