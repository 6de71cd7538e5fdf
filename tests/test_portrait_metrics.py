"""The figures of ``s3d-fast eval --portraits``: masked PSNR, the lips' gap, the speech's
loudness, the upsampling grid's share of the spectrum, and dlib's identity distance."""

import json

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from s3d_fast.errors import S3DError
from s3d_fast.evaluation import identity as clip_identity
from s3d_fast.evaluation import portraits
from s3d_fast.metrics.identity import NO_FACE, SAME_PERSON, face_embedding, identity_distance
from s3d_fast.metrics.portrait import grid_energy, lip_gap, masked_psnr, speech_envelope


@pytest.fixture(scope="module")
def faces():
    astronaut = skimage.data.astronaut()
    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    return astronaut, hopper


def test_masked_psnr_counts_only_the_mask():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:4] = 255
    mask = np.zeros((8, 8), bool)
    mask[4:] = True
    assert masked_psnr(a, b, mask) == 99.0
    mask[3] = True
    assert masked_psnr(a, b, mask) == pytest.approx(-10 * np.log10(8 / 40), abs=1e-9)
    with pytest.raises(ValueError):
        masked_psnr(a, b, np.zeros((8, 8), bool))


def test_grid_energy_sees_a_checkerboard(faces):
    photo = faces[0]
    box = (200, 328, 180, 308)
    checker = photo.astype(np.int16)
    checker[::2, ::2] += 12
    checker[1::2, 1::2] -= 12
    checker = np.clip(checker, 0, 255).astype(np.uint8)
    assert grid_energy(checker, box) > 3 * grid_energy(photo, box)


def test_envelope_follows_loudness():
    sr, fps = 16000, 25
    samples = np.zeros(sr, np.float32)
    samples[sr // 2 :] = 0.5 * np.sin(np.arange(sr // 2) * 0.1)
    env = speech_envelope(samples, 25, fps, sr)
    assert env[:10].max() == 0 and env[15:].min() > 0.3


def test_lip_gap_reads_an_open_mouth(faces):
    astronaut = faces[0]
    gap, outer, found = lip_gap(np.stack([astronaut, astronaut]))
    assert found.all() and gap[0] == pytest.approx(gap[1], abs=0.005)  # tracked in video mode: close, not equal
    assert 0.0 <= gap[0] < 0.2  # a smile: the lips parted a little, against the face's height
    assert gap[0] + 0.02 < outer[0] < 0.3  # the outer height adds both lips' thickness


def test_identity_distance_tells_two_people_apart(faces):
    astronaut, hopper = faces
    same, missing = identity_distance(astronaut, [astronaut, astronaut[:, ::-1]])
    assert missing == 0 and same < 0.3
    other, _ = identity_distance(astronaut, [hopper])
    assert other > SAME_PERSON
    blank = np.full_like(astronaut, 128)
    assert face_embedding(blank) is None
    assert identity_distance(astronaut, [blank]) == (NO_FACE, 1)
    with pytest.raises(S3DError, match="no face in the reference"):
        identity_distance(blank, [astronaut])


def test_portraits_folder_errors(tmp_path):
    with pytest.raises(S3DError, match="no such folder"):
        portraits.portrait_paths(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(S3DError, match="no images"):
        portraits.portrait_paths(str(tmp_path))


def _frames(*images):
    """uint8 (H, W, 3) images as an eval render: (T, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def test_clip_identity_scores_ours_and_the_ground_truth_against_the_source(faces):
    astronaut, hopper = faces
    hopper = np.asarray(Image.fromarray(hopper).resize(astronaut.shape[1::-1]))  # frames share one size
    blank = np.full_like(astronaut, 128)
    gt = np.stack([astronaut] * 9)
    ours = _frames(*[hopper] * 8, astronaut)  # every 8th frame is scored: frames 0 and 8
    row = clip_identity.identity_scores(astronaut, ours, gt, view=_frames(blank), view_gt=np.stack([hopper, blank]))
    assert row["identity_dist_gt"] < 1e-6  # the ground truth is the source
    other, _ = identity_distance(astronaut, [hopper])
    assert row["identity_dist"] == pytest.approx(other / 2, rel=1e-3)  # (hopper + astronaut) / 2
    assert row["identity_no_face"] == 0 and row["view_identity_dist"] == NO_FACE
    # The ground truth from the extra camera: its frames 0, 8, ... only (hopper here).
    assert row["view_identity_dist_gt"] == pytest.approx(other, rel=1e-3)
    assert "view_identity_dist_gt" not in clip_identity.identity_scores(astronaut, ours, gt, view=_frames(blank))
    # A source without a face: no scores, never a crash.
    empty = clip_identity.identity_scores(blank, ours, gt, view=None)
    assert all(np.isnan(v) for v in empty.values()) and "_source_embedding" not in empty

    rows = [
        dict(row, identity="a"),
        dict(row, identity="a"),
        {"identity": "b", "_source_embedding": face_embedding(hopper)},
    ]
    assert clip_identity.between_identities(rows) == pytest.approx(other, rel=1e-3)
    assert np.isnan(clip_identity.between_identities(rows[:2]))  # one identity: no pair


def test_eval_portraits_end_to_end_on_the_astronaut(faces, tmp_path, capsys):
    """``s3d-fast eval --portraits`` with the bundled checkpoint: the photo adapted and baked,
    spoken, turned, scored and pictured."""
    import soundfile

    from s3d_fast.cli import main
    from s3d_fast.render.api import DEMO_SPEECH

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(faces[0]).save(folder / "astronaut.png")
    samples, rate = soundfile.read(DEMO_SPEECH, dtype="float32")
    soundfile.write(tmp_path / "speech.wav", samples[: int(1.6 * rate)], rate)  # 40 frames
    out = tmp_path / "eval"
    argv = ["eval", "--portraits", str(folder), "--speech", str(tmp_path / "speech.wav"), "--out", str(out)]
    assert main(argv + ["--adapt-steps", "3", "--device", "cpu", "--quiet"]) == 0
    (row,) = json.loads((out / "portraits.json").read_text())["portraits"]
    assert row["portrait"] == "astronaut.png" and row["faces"] == 1
    assert row["silent_face_psnr"] == 99.0  # silence gives the photo back
    assert row["upper_face_psnr"] > 30 and row["bake_seconds"] > 0
    assert row["identity_0"] < SAME_PERSON and row["frames_without_face"] == 0
    assert abs(row["source_yaw"]) < 5  # she faces the camera
    for side in ("front", "away"):
        assert row[f"identity_15_{side}"] < SAME_PERSON and 0 <= row[f"identity_30_{side}"] <= 1.5
    picture = np.asarray(Image.open(out / "portraits.png"))
    assert picture.shape == (256, 7 * 256, 3)  # photo, silent, speaking, 15 and 30 degrees each way
    np.testing.assert_array_equal(picture[:, 256:512], picture[:, :256])  # the silent frame is the photo
    assert "| astronaut.png |" in capsys.readouterr().out
