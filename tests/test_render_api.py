"""The rendering API (Renderer -> Identity -> frames) against a TEST DOUBLE of the model
interface (tests/render_model_double.py): batching, audio once up front, cameras, sizes,
timings. The double checks every tensor the renderer hands it against the interface."""

import subprocess
import sys

import numpy as np
import pytest
from render_fixtures import render_checkpoint, write_dataset_frame, write_speech  # noqa: F401

from s3d_fast.data import audio as audio_mod
from s3d_fast.render import api
from s3d_fast.render.errors import RenderError


@pytest.fixture
def identity(render_checkpoint, tmp_path):  # noqa: F811
    renderer = api.Renderer(render_checkpoint, "cpu")
    path, _, _ = write_dataset_frame(tmp_path / "src.png", size=64)
    return renderer.bake(path)


def test_frame_count_rounds_the_speech_length_to_frames():
    assert api.frame_count(16000) == 25
    assert api.frame_count(16000 + 319) == 25  # 19.9 ms over: still 25 frames
    assert api.frame_count(16000 + 320) == 26  # half a frame over: one more
    assert api.frame_count(640) == 1
    assert api.frame_count(16000, fps=30) == 30


def test_mel_windows_at_25_fps_are_the_data_conventions_and_other_rates_centre_theirs():
    mel = np.random.default_rng(0).normal(size=(90, 80)).astype(np.float32)
    np.testing.assert_array_equal(api.mel_windows(mel, 28, 25), audio_mod.mel_windows(mel, 28))
    w30 = api.mel_windows(mel, 33, 30)
    assert w30.shape == (33, 80, 16)
    # Frame 3 at 30 fps is at 0.1 s = mel frame 8: its window starts at 8 - 8 = 0.
    np.testing.assert_array_equal(w30[3], mel[0:16].T)
    np.testing.assert_array_equal(w30[15], mel[32:48].T)  # 0.5 s -> mel 40


def test_render_batches_frames_and_computes_audio_tokens_once(identity, tmp_path):
    wav, _ = write_speech(tmp_path / "s.wav", seconds=0.5)
    frames = list(identity.render(wav, batch=4))
    model = identity.renderer.model
    assert len(frames) == 13  # 0.5 s * 25 fps, rounded
    assert model.calls["audio_tokens"] == [13]
    assert model.calls["render_frames"] == [4, 4, 4, 1]
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    # The source reaches the model (background = its mean colour) and the audio does:
    # the loud first half lights the double's mouth box more than the silent second half.
    mouth = [int(f[36, 36, 0]) for f in frames]
    assert mouth[1] > mouth[-2] + 40
    stats = identity.stats
    assert stats.frames == 13 and stats.render_seconds > 0 and stats.frames_per_second > 0
    assert {"deformation", "marching", "decoder", "compositing", "super-resolution", "to uint8"} <= set(stats.stages)
    assert sum(stats.stages.values()) == pytest.approx(stats.render_seconds, rel=0.2, abs=5e-3)
    assert "bake" in stats.setup and "audio tokens" in stats.setup
    assert "frames/s" in stats.summary() and "super-resolution" in stats.summary()


def test_precomputed_mel_samples_and_cameras(identity):
    samples = (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)
    a = list(identity.render(samples, batch=8))
    mel = audio_mod.audio_features(audio_mod.prepare(samples, 16000), api.frame_count(8000))
    b = list(identity.render(mel, batch=3))
    assert len(a) == len(b) == 13
    np.testing.assert_array_equal(np.stack(a), np.stack(b))  # batching changes no pixel
    # Cameras drive the view: an orbit moves the double's camera bar across the frame.
    orbit = identity.cameras(13, orbit=40.0)
    frames = np.stack(list(identity.render(mel, pose=orbit)))
    bar_col = frames[:, 5, :, 1].argmax(1)
    assert bar_col[0] < bar_col[6] - 5 and bar_col[12] < bar_col[6] - 5
    with pytest.raises(RenderError, match="12 cameras for 13 frames"):
        identity.render(mel, pose=orbit[:12])


def test_output_size_is_resampled(identity):
    samples = np.zeros(1600, np.float32)
    frames = list(identity.render(samples, size=128))
    assert frames[0].shape == (128, 128, 3)
    assert "resize + to uint8" in identity.stats.stages
    for bad in (32, 2000, 101):
        with pytest.raises(RenderError, match="--size"):
            identity.render(samples, size=bad)
    for bad in (0, 65, 2.5):
        with pytest.raises(RenderError, match="batch must be an integer from 1 to 64"):
            identity.render(samples, batch=bad)
    with pytest.raises(RenderError, match="--fps"):
        identity.render(samples, fps=0)
    with pytest.raises(RenderError, match=r"\(T, 80, 16\)"):
        identity.render(np.zeros((4, 80, 8), np.float32))


def test_checkpoint_and_device_errors(render_checkpoint, tmp_path, monkeypatch):  # noqa: F811
    with pytest.raises(RenderError, match="no such checkpoint"):
        api.Renderer(tmp_path / "nope", "cpu")
    monkeypatch.setattr(api, "DEMO_CHECKPOINT", str(tmp_path / "absent"))
    with pytest.raises(RenderError, match="bundled demo checkpoint is not installed"):
        api.Renderer(None, "cpu")
    monkeypatch.setattr(api, "DEMO_CHECKPOINT", render_checkpoint)
    assert api.Renderer(None, "cpu").checkpoint == render_checkpoint
    with pytest.raises(RenderError, match="--device"):
        api.resolve_device("tpu")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(RenderError, match="CUDA is not available"):
            api.resolve_device("cuda")


def test_package_import_stays_light():
    code = (
        "import sys, s3d_fast, s3d_fast.render, s3d_fast.render.cli; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "R = s3d_fast.Renderer; assert 'torch' in sys.modules and R.__name__ == 'Renderer'; "
        "assert 'librosa' not in sys.modules, 'librosa imported before a mel bank is needed'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inference_mode_does_not_leak_into_the_caller_between_frames(identity):
    import torch

    frames = identity.render(np.zeros(1600, np.float32), batch=1)
    next(frames)
    assert not torch.is_inference_mode_enabled()
    assert len(list(frames)) == 2  # 0.1 s = 2.5 frames -> 3, one taken


def test_bake_adapts_the_source_only_when_asked(render_checkpoint, tmp_path):  # noqa: F811
    renderer = api.Renderer(render_checkpoint, "cpu")
    path, _, _ = write_dataset_frame(tmp_path / "src.png", size=64)
    renderer.bake(path)
    assert renderer.model.calls["adapt"] == []
    renderer.bake(path, adapt_steps=7)
    assert renderer.model.calls["adapt"] == [7]
    assert renderer.model.calls["audio_tokens"] == [1, 1]  # the two quiet inputs (each alone), for the adaptation
