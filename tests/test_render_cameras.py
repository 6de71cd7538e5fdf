"""Camera sequences of a render: free-view offsets about the head, orbits, clip poses."""

import numpy as np
import pytest

from s3d_fast.data.synthtalk import camera
from s3d_fast.render import cameras
from s3d_fast.render.errors import CameraError

SRC = np.linalg.inv(camera.pose(10.0, -5.0, 2.0)) @ camera.front_camera()


def _yaw_of(c2w):
    """Yaw (degrees) of the camera position about the head's +y axis."""
    p = c2w[..., :3, 3]
    return np.degrees(np.arctan2(p[..., 0], p[..., 2]))


def test_static_with_free_view_offset_rotates_about_the_head_centre():
    front = camera.front_camera()
    seq = cameras.camera_sequence(front, 7, yaw=30.0, pitch=-10.0, roll=5.0)
    assert seq.shape == (7, 4, 4) and seq.dtype == np.float32
    assert np.allclose(seq, seq[0])
    # Same convention as SynthTalk's extra views; the distance to the head is kept and
    # the camera still looks at the head's centre.
    np.testing.assert_allclose(seq[0], camera.free_view(front, 30.0, -10.0, 5.0), atol=1e-6)
    assert np.linalg.norm(seq[0, :3, 3]) == pytest.approx(camera.DISTANCE, rel=1e-6)
    to_centre = -seq[0, :3, 3] / np.linalg.norm(seq[0, :3, 3])
    np.testing.assert_allclose(seq[0, :3, 2], to_centre, atol=1e-6)
    assert _yaw_of(seq[0]) == pytest.approx(30.0, abs=1e-3)
    np.testing.assert_allclose(cameras.camera_sequence(SRC, 3), np.repeat(SRC[None], 3, 0), atol=1e-6)


def test_orbit_sweeps_out_and_back_with_a_small_pitch_wobble():
    n = 100
    seq = cameras.camera_sequence(camera.front_camera(), n, orbit=30.0)
    yaw = _yaw_of(seq)
    assert yaw[0] == pytest.approx(-30.0, abs=0.5)
    assert yaw[n // 2] == pytest.approx(30.0, abs=0.5)
    assert yaw.min() == pytest.approx(-30.0, abs=0.5) and yaw.max() == pytest.approx(30.0, abs=0.5)
    assert np.all(np.diff(yaw[: n // 2]) > 0) and np.all(np.diff(yaw[n // 2 :]) < 0)
    # Smooth, and one period: the last frame leads back into the first.
    step = np.abs(np.diff(np.concatenate([yaw, yaw[:1]])))
    assert step.max() < 2.5
    height = seq[:, 1, 3]  # y of the camera position: the pitch wobble
    assert 0.05 < np.ptp(height) < 0.8


def test_pose_from_a_clip_is_truncated_or_looped_without_jumps(tmp_path):
    t = 10
    c2w = np.stack([np.linalg.inv(camera.pose(float(i), 0.0, 0.0)) @ camera.front_camera() for i in range(t)])
    np.savez(tmp_path / "meta.npz", c2w=c2w.astype(np.float32), valid=np.ones(t, bool))
    short = cameras.camera_sequence(SRC, 4, pose_from=tmp_path / "meta.npz")
    np.testing.assert_allclose(short, c2w[:4], atol=1e-6)
    long = cameras.camera_sequence(SRC, 25, pose_from=tmp_path)  # the clip folder works too
    assert long.shape == (25, 4, 4)
    idx = [int(np.argmin(np.abs(c2w - f).sum((1, 2)))) for f in long]
    assert idx[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7]  # ping-pong
    assert max(abs(a - b) for a, b in zip(idx, idx[1:])) == 1
    # Free-view offsets ride on top of the clip's head motion.
    off = cameras.camera_sequence(SRC, 4, pose_from=tmp_path, yaw=20.0)
    np.testing.assert_allclose(off[2], camera.free_view(c2w[2], 20.0, 0.0, 0.0), atol=1e-5)


def test_bad_camera_input_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="--orbit"):
        cameras.camera_sequence(SRC, 5, orbit=20.0, yaw=10.0)
    with pytest.raises(CameraError, match="no such pose file"):
        cameras.camera_sequence(SRC, 5, pose_from=tmp_path / "nope.npz")
    np.savez(tmp_path / "x.npz", frames=np.zeros(3))
    with pytest.raises(CameraError, match="no 'c2w'"):
        cameras.camera_sequence(SRC, 5, pose_from=tmp_path / "x.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CameraError, match="cannot read"):
        cameras.camera_sequence(SRC, 5, pose_from=tmp_path / "junk.npz")
    np.savez(tmp_path / "bad.npz", c2w=np.ones((3, 4, 4)))
    with pytest.raises(CameraError, match="rigid"):
        cameras.camera_sequence(SRC, 5, pose_from=tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", c2w=np.ones((3, 3, 4)))
    with pytest.raises(CameraError, match=r"\(T, 4, 4\)"):
        cameras.camera_sequence(SRC, 5, pose_from=tmp_path / "shape.npz")
    with pytest.raises(CameraError, match="at least one frame"):
        cameras.camera_sequence(SRC, 0)
    with pytest.raises(CameraError, match="finite"):
        cameras.camera_sequence(SRC, 2, yaw=float("nan"))


@pytest.mark.parametrize("start", [0.0, -6.0, 34.9, 54.5])
@pytest.mark.parametrize("turn", [15.0, -30.0])
def test_camera_yaw_reads_the_turn_a_yaw_offset_makes(start, turn):
    source = camera.free_view(camera.front_camera(), start, 0.0)
    assert cameras.camera_yaw(source) == pytest.approx(start, abs=1e-9)
    turned = cameras.camera_sequence(source, 1, yaw=turn)[0]
    assert cameras.camera_yaw(turned) == pytest.approx(start + turn, abs=1e-4)
