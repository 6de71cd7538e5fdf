"""Real-video preprocessing on real pixels: a photograph (scikit-image's astronaut) moved by
known similarity transforms must be detected, aligned and posed consistently."""

import numpy as np
import pytest
import skimage.data

from s3d_fast.cli import main
from s3d_fast.data import video
from s3d_fast.data.dataset import TalkingHeadDataset, load_manifest
from s3d_fast.data.preprocess import align, geometry, landmarks
from s3d_fast.data.synthtalk import camera

T, S = 25, 256


def _motion():
    i = np.arange(T)
    angle = 8.0 * np.sin(i / 4.0)  # degrees, image plane
    scale = 1.0 + 0.1 * np.sin(i / 6.0)
    shift = np.stack([10 * np.sin(i / 5.0), 7 * np.cos(i / 4.5)], 1)
    return angle, scale, shift


def _similarity(angle, scale, shift, centre):
    """2x3: rotate by `angle` (degrees, counter-clockwise on screen) and scale about `centre`, then shift."""
    a = np.radians(angle)
    r = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return np.concatenate([r, (centre - r @ centre + shift)[:, None]], 1)


@pytest.fixture(scope="module")
def moving_face():
    photo = skimage.data.astronaut()[40:360, 80:400]  # 320^2 around the face
    centre = np.array([S / 2, S / 2])
    base = align.warp(photo, np.array([[0.8, 0, 0], [0, 0.8, 0]]), S)
    angle, scale, shift = _motion()
    mats = [_similarity(a, s, t, centre) for a, s, t in zip(angle, scale, shift)]
    frames = np.stack([align.warp(base, m, S) for m in mats])
    return base, frames, mats


def test_detection_alignment_and_pose_track_the_motion(moving_face):
    base, frames, mats = moving_face
    lm0, found0 = landmarks.detect(base[None])
    assert found0.all() and lm0.shape == (1, 478, 3)
    c0, x0 = align.square_from_landmarks(lm0[0])
    roll0 = geometry.euler_from_rotation(camera.front_camera()[:3, :3] @ geometry.head_rotation(lm0[0]))[2]
    lm, found = landmarks.detect(frames)
    assert found.all()
    angle, scale, _ = _motion()
    for i in range(T):
        c, x = align.square_from_landmarks(lm[i])
        m = mats[i]
        # The crop square moves exactly as the face was moved (to a pixel or two).
        np.testing.assert_allclose(c, m[:, :2] @ c0 + m[:, 2], atol=2.0)
        assert np.linalg.norm(x) / np.linalg.norm(x0) == pytest.approx(scale[i], rel=0.03)
        turned = np.degrees(np.arctan2(x[1], x[0]) - np.arctan2(x0[1], x0[0]))
        assert turned == pytest.approx(-angle[i], abs=1.5)
        # Head roll from the 3-D landmarks follows the in-plane rotation (counter-clockwise on
        # screen is a positive roll about the head's +z, which points at the viewer).
        roll = geometry.euler_from_rotation(camera.front_camera()[:3, :3] @ geometry.head_rotation(lm[i]))[2]
        assert roll - roll0 == pytest.approx(angle[i], abs=2.5)


def test_preprocess_command_writes_the_shared_format(moving_face, tmp_path):
    _, frames, _ = moving_face
    speech = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    src = tmp_path / "astronaut.mp4"
    video.write_video(src, frames, 25, speech, 16000, crf=12)
    out = tmp_path / "ds"
    assert main(["preprocess", str(src), "--out", str(out), "--size", "128", "--quiet"]) == 0
    m = load_manifest(out)
    assert m.resolution == 128 and len(m.clips) == 1 and m.clips[0]["n_frames"] == T
    with np.load(m.path(m.clips[0]["meta"])) as z:
        assert z["valid"].all() and z["landmarks"].shape == (T, 478, 3)
        assert z["masks"].shape == (T, 128, 128) and {1, 2} <= set(np.unique(z["masks"]))
        np.testing.assert_allclose(z["c2w"], np.linalg.inv(z["head_pose"]) @ z["camera_world"], atol=1e-5)
        # Aligned: the eyes stay put although the face moved by ~10 px and 8 degrees.
        right_eye, left_eye, _ = align._indices()
        eyes = np.concatenate([z["landmarks"][:, right_eye, :2].mean(1), z["landmarks"][:, left_eye, :2].mean(1)], 1)
        assert eyes.std(0).max() < 1.5
    item = TalkingHeadDataset(out)[0]
    assert item["target"].shape == (1, 3, 128, 128) and item["mel"].shape == (1, 80, 16)


def test_preprocess_errors_leave_nothing(tmp_path, capsys):
    blank = tmp_path / "blank.mp4"
    video.write_video(blank, np.full((10, 64, 64, 3), 128, np.uint8), 25, np.zeros(8000, np.float32), 16000)
    mute = tmp_path / "mute.mp4"
    video.write_video(mute, np.full((10, 64, 64, 3), 128, np.uint8), 25)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    for path, message in ((blank, "no face"), (mute, "no audio"), (bad, "cannot open")):
        out = tmp_path / f"out_{path.stem}"
        assert main(["preprocess", str(path), "--out", str(out), "--quiet"]) == 1
        assert message in capsys.readouterr().err
        assert not (out / "clips").exists() or not any((out / "clips").iterdir())
