"""Video I/O: H.264 + AAC round trip, atomic writes, clear errors."""

import os

import av
import numpy as np
import pytest

from s3d_fast.data import video
from s3d_fast.data.errors import VideoError


def _frames(t=30, h=48, w=64):
    fr = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        fr[i, :, :, 0] = 40 + 5 * i
        fr[i, 8:24, i : i + 16, 1] = 230
    return fr


def test_round_trip_with_aac_audio(tmp_path):
    frames = _frames()
    speech = np.zeros(int(16000 * 1.2), np.float32)
    speech[8000:8400] = 0.8 * np.sin(np.arange(400) * 0.3)  # a click at 0.5 s
    path = tmp_path / "clip.mp4"
    video.write_video(path, frames, fps=25, audio=speech, sample_rate=16000)
    with av.open(str(path)) as c:
        kinds = {s.type: s.codec_context.name for s in c.streams}
    assert kinds == {"video": "h264", "audio": "aac"}
    v = video.read_video(path)
    assert v.frames.shape == frames.shape and v.frames.dtype == np.uint8
    assert v.fps == 25.0
    assert np.abs(v.frames.astype(int) - frames).mean() < 4  # lossy, but close
    assert v.sample_rate == 16000 and abs(v.audio.shape[0] - speech.shape[0]) <= 1
    # Audio stays in sync: the click is decoded within a millisecond of where it was.
    assert abs(int(np.argmax(np.abs(v.audio) > 0.3)) - 8000) < 16
    assert [p for p in os.listdir(tmp_path) if "tmp" in p] == []


def test_no_audio_and_streaming_frames(tmp_path):
    path = tmp_path / "silent.mp4"
    video.write_video(path, (f for f in _frames(10)), fps=25)
    v = video.read_video(path)
    assert v.frames.shape[0] == 10 and v.audio is None and v.sample_rate is None
    assert sum(1 for _ in video.iter_frames(path)) == 10


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "x.mp4"

    def frames():
        yield _frames(1)[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.write_video(path, frames())
    assert os.listdir(tmp_path) == []
    with pytest.raises(VideoError, match="even"):
        video.write_video(path, np.zeros((2, 15, 16, 3), np.uint8))
    with pytest.raises(VideoError, match="uint8"):
        video.write_video(path, np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(VideoError, match="no frames"):
        video.write_video(path, [])
    assert os.listdir(tmp_path) == []


def test_read_errors(tmp_path):
    with pytest.raises(VideoError, match="no such"):
        video.read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    with pytest.raises(VideoError):
        video.read_video(bad)


def test_frames_beyond_the_bounds_are_refused_before_they_fill_memory(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    video.write_video(path, np.zeros((3, 64, 64, 3), np.uint8), fps=25)
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 63 * 64)
    with pytest.raises(VideoError, match="64x64 video frames; at most 4032 pixels"):
        video.read_video(path)
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 64 * 64)
    monkeypatch.setattr(video, "MAX_VIDEO_BYTES", 2 * 64 * 64 * 3)
    with pytest.raises(VideoError, match="decoded frames; cut or downscale it first"):
        video.read_video(path)
