"""``s3d-fast render`` end to end through the CLI's main(), with a TEST DOUBLE of the model
(tests/render_model_double.py) behind the renderer's model seam: the mp4 (frames in sync
with the speech, audio muxed in, atomic), the demo with no arguments, and every bad input
as one clear line, a non-zero exit and no output file."""

import os

import av
import numpy as np
import pytest
import render_model_double as double
import skimage.data
from PIL import Image
from render_fixtures import render_checkpoint, write_dataset_frame, write_speech  # noqa: F401

from s3d_fast.cli import main
from s3d_fast.data import audio as audio_mod
from s3d_fast.data import video
from s3d_fast.render import api


@pytest.fixture
def inputs(tmp_path, render_checkpoint):  # noqa: F811
    image, _, _ = write_dataset_frame(tmp_path / "face.png", size=64)
    wav, samples = write_speech(tmp_path / "speech.wav", seconds=0.5)
    return {"image": image, "audio": wav, "ckpt": render_checkpoint, "dir": tmp_path, "samples": samples}


def _render(inputs, *extra, out="out.mp4"):
    out_path = os.path.join(inputs["dir"], out) if out else None
    argv = [
        "render",
        "--image",
        inputs["image"],
        "--audio",
        inputs["audio"],
        "--checkpoint",
        inputs["ckpt"],
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]
    if out_path:
        argv += ["--out", out_path]
    return main(argv), out_path


def _no_leftovers(folder):
    return [p for p in os.listdir(folder) if p.endswith(".mp4") or "tmp" in p]


def test_render_writes_an_mp4_with_the_speech_in_sync(inputs, capsys):
    rc, out = _render(inputs, "--batch", "3")
    assert rc == 0
    v = video.read_video(out)
    assert v.frames.shape == (13, 64, 64, 3) and v.fps == 25.0  # 0.5 s * 25 fps
    assert v.sample_rate == 16000 and abs(v.audio.shape[0] - inputs["samples"].shape[0]) <= 1
    with av.open(out) as c:
        vs, aus = c.streams.video[0], c.streams.audio[0]
        v_dur, a_dur = float(vs.duration * vs.time_base), float(aus.duration * aus.time_base)
    assert abs(v_dur - a_dur) <= 0.5 / 25 + 1e-3  # ends within half a frame of the speech
    # The loud first half of the speech opens the double's "mouth" box, the silence does not.
    assert int(v.frames[1, 36, 36, 0]) > int(v.frames[-2, 36, 36, 0]) + 30
    printed = capsys.readouterr().out
    assert "wrote" in printed and "13 frames" in printed and "frames/s" in printed
    for stage in double.STAGES:
        assert stage in printed
    assert _no_leftovers(inputs["dir"]) == ["out.mp4"]


def test_size_fps_and_free_view_options(inputs, tmp_path):
    rc, out = _render(inputs, "--size", "96", "--fps", "30", "--yaw", "25", "--pitch", "-5")
    assert rc == 0
    v = video.read_video(out)
    assert v.frames.shape == (15, 96, 96, 3) and v.fps == 30.0
    # --pose-from: a preprocessed clip's head motion, looped to the speech.
    from s3d_fast.data.synthtalk import camera

    c2w = np.stack([np.linalg.inv(camera.pose(3.0 * i, 0, 0)) @ camera.front_camera() for i in range(5)])
    np.savez(tmp_path / "meta.npz", c2w=c2w.astype(np.float32))
    rc, out = _render(inputs, "--pose-from", str(tmp_path / "meta.npz"), out="posed.mp4")
    assert rc == 0 and video.read_video(out).frames.shape[0] == 13


def test_photo_source_through_the_cli(inputs, tmp_path, capsys):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    rc = main(
        [
            "render",
            "--image",
            str(photo),
            "--audio",
            inputs["audio"],
            "--checkpoint",
            inputs["ckpt"],
            "--out",
            str(tmp_path / "a.mp4"),
            "--orbit",
            "20",
            "--quiet",
        ]
    )
    assert rc == 0 and "photo source" in capsys.readouterr().out
    assert video.read_video(tmp_path / "a.mp4").frames.shape == (13, 64, 64, 3)


def test_no_arguments_renders_the_bundled_demo_with_an_orbit(inputs, tmp_path, monkeypatch, capsys):
    # The bundled speech is real; the demo image and checkpoint are stood in for here.
    assert os.path.isfile(api.DEMO_SPEECH)
    monkeypatch.setattr(api, "DEMO_IMAGE", inputs["image"])
    monkeypatch.setattr(api, "DEMO_CHECKPOINT", inputs["ckpt"])
    monkeypatch.chdir(tmp_path)
    assert main(["render", "--quiet", "--device", "cpu"]) == 0
    v = video.read_video(tmp_path / "s3d_demo.mp4")
    speech = audio_mod.load_audio(api.DEMO_SPEECH)
    assert v.frames.shape[0] == api.frame_count(speech.samples.shape[0]) == 100
    bar = v.frames[:, 5, :, 1].astype(int).argmax(1)  # the double's camera-yaw bar
    # Out to +DEMO_ORBIT and back: the double's bar spans 360 degrees of yaw across the frame.
    from s3d_fast.render.cli import DEMO_ORBIT

    swing = 2 * DEMO_ORBIT / 360 * (v.frames.shape[2] - 1)
    assert bar[50] > bar[0] and bar[50] > bar[99]
    assert abs((bar[50] - bar[0]) - swing) <= 1.5 and abs((bar[50] - bar[99]) - swing) <= 1.5
    assert "s3d_demo.mp4" in capsys.readouterr().out


def _bad(kind, inputs, monkeypatch):
    d = inputs["dir"]
    if kind == "missing image":
        return ["--image", str(d / "nope.png")], "no such file"
    if kind == "missing audio":
        return ["--audio", str(d / "nope.wav")], "no such file"
    if kind == "unreadable audio":
        (d / "junk.wav").write_bytes(b"RIFF....WAVEjunk")
        return ["--audio", str(d / "junk.wav")], "cannot decode audio"
    if kind == "empty audio":
        audio_mod.write_wav(d / "empty.wav", np.zeros(0, np.float32))
        return ["--audio", str(d / "empty.wav")], "no samples"
    if kind == "audio shorter than a frame":
        audio_mod.write_wav(d / "short.wav", np.full(300, 0.1, np.float32))
        return ["--audio", str(d / "short.wav")], "shorter than one"
    if kind == "unreadable image":
        (d / "junk.png").write_bytes(b"not an image")
        return ["--image", str(d / "junk.png")], "cannot read image"
    if kind == "image without a face":
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(d / "blank.png")
        return ["--image", str(d / "blank.png")], "no face found in"
    if kind == "checkpoint of another format version":
        double.write_checkpoint(d / "v2", format_version=2)
        return ["--checkpoint", str(d / "v2")], "format version 2"
    if kind == "missing checkpoint":
        return ["--checkpoint", str(d / "none")], "no such checkpoint"
    if kind == "size too small":
        return ["--size", "32"], "--size"
    if kind == "size odd":
        return ["--size", "255"], "--size"
    if kind == "size too large":
        return ["--size", "4096"], "--size"
    if kind == "out folder missing":
        return ["--out", str(d / "no" / "x.mp4")], "does not exist"
    if kind == "out folder is a file":
        (d / "file").write_text("x")
        return ["--out", str(d / "file" / "x.mp4")], "does not exist"
    if kind == "out is a folder":
        (d / "folder").mkdir()
        return ["--out", str(d / "folder")], "is a folder"
    if kind == "out folder unwritable":
        # Permission bits do not stop root, so make the write probe itself fail.
        import tempfile

        def refuse(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
        return [], "cannot write in"
    if kind == "orbit with yaw":
        return ["--orbit", "30", "--yaw", "0"], "--orbit"
    if kind == "missing pose file":
        return ["--pose-from", str(d / "clip.npz")], "no such file"
    if kind == "bad pose file":
        np.savez(d / "clip.npz", frames=np.zeros(2))
        return ["--pose-from", str(d / "clip.npz")], "no 'c2w'"
    if kind == "batch zero":
        return ["--batch", "0"], "--batch"
    if kind == "bad fps":
        return ["--fps", "0"], "--fps"
    if kind == "bad device":
        return ["--device", "tpu"], "--device"
    raise AssertionError(kind)


BAD = [
    "missing image",
    "missing audio",
    "unreadable audio",
    "empty audio",
    "audio shorter than a frame",
    "unreadable image",
    "image without a face",
    "checkpoint of another format version",
    "missing checkpoint",
    "size too small",
    "size odd",
    "size too large",
    "out folder missing",
    "out folder is a file",
    "out is a folder",
    "out folder unwritable",
    "orbit with yaw",
    "missing pose file",
    "bad pose file",
    "batch zero",
    "bad fps",
    "bad device",
]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_is_one_clear_line_and_no_output(kind, inputs, monkeypatch, capsys):
    extra, message = _bad(kind, inputs, monkeypatch)
    argv = [
        "render",
        "--image",
        inputs["image"],
        "--audio",
        inputs["audio"],
        "--checkpoint",
        inputs["ckpt"],
        "--device",
        "cpu",
        "--out",
        str(inputs["dir"] / "out.mp4"),
        "--quiet",
    ]
    # Later options win in argparse, so `extra` overrides the good defaults above.
    assert main(argv + extra) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("s3d-fast render: error: "), err
    assert message in err[0]
    assert _no_leftovers(inputs["dir"]) == []


def test_bad_pose_file_fails_before_the_model_loads(inputs, monkeypatch, capsys):
    np.savez(inputs["dir"] / "clip.npz", c2w=np.ones((3, 4, 4)))

    def no_model(*a):
        raise AssertionError("the model was loaded before the pose file was checked")

    monkeypatch.setattr(api, "_load_model", no_model)
    rc, _ = _render(inputs, "--pose-from", str(inputs["dir"] / "clip.npz"))
    assert rc == 1 and "rigid" in capsys.readouterr().err


def test_failure_mid_render_leaves_no_partial_file(inputs, monkeypatch):
    calls = []

    def broken(self, baked, tokens, c2w, K):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(self, baked, tokens, c2w, K)

    original = double.RenderModelDouble.render_frames
    monkeypatch.setattr(double.RenderModelDouble, "render_frames", broken)
    rc, _ = _render(inputs, "--batch", "2")
    assert rc == 130 and len(calls) == 2
    assert _no_leftovers(inputs["dir"]) == []


def test_image_alone_speaks_the_demo_sentence(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["render", "--image", inputs["image"], "--checkpoint", inputs["ckpt"], "--quiet"]) == 0
    assert video.read_video(tmp_path / "out.mp4").frames.shape[0] == 100  # 4 s of demo speech


def test_missing_demo_checkpoint_is_a_clear_error(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(api, "DEMO_IMAGE", inputs["image"])
    monkeypatch.setattr(api, "DEMO_CHECKPOINT", str(tmp_path / "not-installed"))
    monkeypatch.chdir(tmp_path)
    assert main(["render", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled demo checkpoint is not installed" in err[0]
    assert _no_leftovers(tmp_path) == []


def test_speech_from_a_video_file(inputs, tmp_path):
    clip = tmp_path / "talk.mp4"
    video.write_video(clip, np.zeros((13, 16, 16, 3), np.uint8), 25, inputs["samples"], 16000)
    rc, out = _render({**inputs, "audio": str(clip)})
    assert rc == 0 and video.read_video(out).frames.shape[0] == 13
    silent = tmp_path / "silent.mp4"
    video.write_video(silent, np.zeros((5, 16, 16, 3), np.uint8), 25)
    assert (
        main(
            [
                "render",
                "--image",
                inputs["image"],
                "--audio",
                str(silent),
                "--checkpoint",
                inputs["ckpt"],
                "--out",
                str(tmp_path / "x.mp4"),
                "--quiet",
            ]
        )
        == 1
    )
    assert not (tmp_path / "x.mp4").exists()
