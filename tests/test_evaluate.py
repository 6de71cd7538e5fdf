"""``s3d-fast eval`` at toy sizes: outputs, metric sanity, the silent-audio branch, errors.

The checkpoint is the tiny test model freshly initialised and saved exactly as
``s3d-fast train`` saves one (kind "generator", the run's config), beside a freshly
initialised lip-sync expert saved as ``RUN/syncnet.safetensors``: training either costs
tens of seconds here and test_train covers it; these tests check the evaluation around it.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from model_helpers import tiny_config
from PIL import Image

from s3d_fast.checkpoint import RunDirectory, save_checkpoint
from s3d_fast.cli import main
from s3d_fast.config import config_to_dict
from s3d_fast.data import audio
from s3d_fast.data.dataset import ClipStore, load_manifest
from s3d_fast.evaluation.rendering import silent_mel, source_frame
from s3d_fast.evaluation.scores import image_metrics, metric_box
from s3d_fast.metrics import identity
from s3d_fast.metrics import landmarks as lm
from s3d_fast.model import GENERATOR_KIND as KIND
from s3d_fast.model import S3DNeRF
from s3d_fast.model.syncnet import SyncNet, SyncNetConfig, save_syncnet

FRAMES = "8"


def _save_generator(path, kind=KIND, step=3):
    cfg = tiny_config()
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model)
    return save_checkpoint(
        path, model_state=model.state_dict(), config=config_to_dict(cfg), step=step, extra={"kind": kind}
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "run"
    _save_generator(RunDirectory(root).checkpoint_path(3))
    (root / "config.json").write_text(json.dumps({"config": config_to_dict(tiny_config())}))  # as train writes it
    torch.manual_seed(0)
    save_syncnet(root / "syncnet.safetensors", SyncNet(SyncNetConfig(face_size=32, embed_dim=32)))
    return root


def _clip(data, split="heldout"):
    m = load_manifest(data)
    store = ClipStore(m, views=True)
    clip = m.clips_in(split)[0]
    return clip, store.get(clip)


def test_eval_writes_outputs_and_feeds_silence(data, run, monkeypatch, capsys):
    fed = []
    original = S3DNeRF.audio_tokens

    def spy(self, mel):
        fed.append(mel.detach().cpu().numpy().copy())
        return original(self, mel)

    monkeypatch.setattr(S3DNeRF, "audio_tokens", spy)
    assert (
        main(["eval", "--checkpoint", str(run), "--data", str(data), "--frames", FRAMES, "--batch", "4", "--quiet"])
        == 0
    )
    out = run / "eval_step_3"  # the default: RUN/eval_step_N
    result = json.loads((out / "metrics.json").read_text())
    assert result["step"] == 3 and result["split"] == "heldout" and result["renderer"] == "training-style"
    [row] = result["clips"]
    clip, clip_data = _clip(data)
    assert row["clip"] == clip["id"] and row["frames"] == int(FRAMES)
    assert row["source_frame"] == int(np.argmin(clip_data["visemes"][: int(FRAMES), 0]))
    mean = result["mean"]
    for key in (
        "psnr",
        "ssim",
        "mouth_psnr",
        "mouth_ssim",
        "psnr_copy",
        "mouth_psnr_copy",
        "lmd",
        "lmd_rule_on_gt",
        "mouth_corr",
        "mouth_corr_silent",
        "mouth_corr_gt",
        "lse_d_ours",
        "lse_c_ours",
        "lse_d_gt",
        "lse_d_gt_shifted",
        "view_psnr",
        "view_ssim",
        "fps",
        "training_fps",
    ):
        assert isinstance(mean[key], float) and np.isfinite(mean[key]), key
    assert 0 < mean["psnr"] < 60 and -1 <= mean["ssim"] <= 1 and 0 <= mean["lse_d_gt"] <= 2
    # dlib's identity distance is scored (NaN here: no face at toy sizes; tests/test_portrait_metrics.py)
    assert {"identity_dist", "identity_dist_gt", "identity_no_face"} <= set(row)
    assert mean["fps"] > 0 and mean["lmd"] >= 0
    table = (out / "metrics.md").read_text()
    assert "| **mean** |" in table and "LSE-D GT+1s" in table and "view PSNR" in table
    assert "| **mean** |" in capsys.readouterr().out
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.ndim == 3 and grid.shape[0] > 64 * 3 and grid.std() > 0
    assert not [p for p in out.iterdir() if ".tmp" in p.name]

    # The bake-time adaptation's quiet frame (a quiet room's, as render bakes), then the
    # renders of this clip: speech, silence, the extra view (audio encoded once per render).
    assert len(fed) == 4
    rest, speech, silence, view = fed
    np.testing.assert_array_equal(rest, audio.rest_mels()[1:])
    row = result["clips"][0]
    assert row["adapt_l1_after"] < row["adapt_l1_before"] and row["adapt_seconds"] > 0
    np.testing.assert_array_equal(speech, clip_data["mel"][: int(FRAMES)])
    np.testing.assert_array_equal(view, speech)
    assert np.all(silence == audio.MEL_MIN) and silence.shape == speech.shape


def test_eval_baked_without_syncnet_notes_and_skips_sync(data, run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(identity, "unavailable", lambda: "the identity metric needs dlib")
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("syncnet.safetensors", "eval_*"))
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "--checkpoint",
            str(RunDirectory(bare).latest()),
            "--data",
            str(data),
            "--frames",
            "6",
            "--baked",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert "sync scores skipped" in capsys.readouterr().err
    result = json.loads((out / "metrics.json").read_text())
    assert result["renderer"] == "baked" and result["notes"]
    mean = result["mean"]
    assert not [k for k in mean if k.startswith("lse_")]
    assert mean["baked_fps"] > 0 and mean["training_fps"] > 0 and np.isfinite(mean["psnr"])
    assert "sync scores skipped" in (out / "metrics.md").read_text()
    assert "identity scores skipped: the identity metric needs dlib" in result["notes"]
    assert not [k for k in result["clips"][0] if "identity_" in k]


def test_image_metrics_sanity(data):
    clip, d = _clip(data)
    gt = torch.from_numpy(d["frames"][:6]).permute(0, 3, 1, 2).float() / 255
    box = (40, 50, 20, 44)
    same = image_metrics(gt, gt.clone(), box)
    assert same["psnr"] == float("inf") and same["mouth_psnr"] == float("inf")
    assert same["ssim"] == pytest.approx(1.0) and same["mouth_ssim"] == pytest.approx(1.0)
    grey = image_metrics(gt, torch.full_like(gt, float(gt.mean())), box)
    assert (
        grey["psnr"] < 20 and grey["ssim"] < 0.6 and grey["mouth_ssim"] < 0.2
    )  # far below the 24 dB a model must reach
    noisy = image_metrics(gt, (gt + 0.01 * torch.randn_like(gt)).clamp(0, 1), box)
    assert 35 < noisy["psnr"] < 45
    only = np.zeros(6, bool)
    only[2] = True
    assert image_metrics(gt, torch.cat([gt[:2], torch.zeros_like(gt[2:])]), box, only)["psnr"] < 15
    assert metric_box((40, 43, 20, 22), 64, 64) == (36, 47, 16, 27)  # grown to SSIM's 11 px window
    assert metric_box((60, 63, 0, 2), 64, 64) == (53, 64, 0, 11)


def test_silent_mel_is_the_log_mel_of_zeros():
    mel = silent_mel(7)
    assert mel.shape == (7, audio.N_MELS, audio.MEL_STEP)
    assert np.all(mel == audio.MEL_MIN)
    speechy = audio.mel_windows(audio.log_mel(0.1 * np.sin(np.arange(4480) * 0.3).astype(np.float32)), 7)
    assert speechy.max() > audio.MEL_MIN + 1


def test_source_frame_is_the_least_open_usable_frame(data):
    _, d = _clip(data)
    d = dict(d)
    jaw = d["visemes"][:, 0]
    assert source_frame(d, len(jaw)) == int(np.argmin(jaw))
    d["valid"] = np.ones_like(d["valid"])
    d["valid"][int(np.argmin(jaw))] = False
    assert jaw[source_frame(d, len(jaw))] == np.sort(jaw)[1]


def test_mouth_landmarks_from_masks_and_the_pixel_rule(data):
    m = load_manifest(data)
    store = ClipStore(m)
    errors, gaps, jaws = [], [], []
    for clip in m.clips:
        d = store.get(clip)
        truth = lm.landmarks_from_masks(d["masks"])
        assert np.isfinite(truth).all()
        left, right, up_o, lo_o, up_i, lo_i = np.moveaxis(truth, 1, 0)
        assert (left[:, 0] < right[:, 0]).all()
        assert (
            (up_o[:, 1] <= up_i[:, 1]).all() and (up_i[:, 1] <= lo_i[:, 1]).all() and (lo_i[:, 1] <= lo_o[:, 1]).all()
        )
        gaps.append(lo_i[:, 1] - up_i[:, 1])
        jaws.append(d["visemes"][:, 0])
        errors.append(lm.landmark_distance(truth, lm.landmarks_from_pixels(d["frames"], d["masks"]))[0])
    # The jaw opens the mouth: the inner lip gap follows the jaw viseme.
    assert np.corrcoef(np.concatenate(gaps), np.concatenate(jaws))[0, 1] > 0.6  # (whole pixels at 64^2)
    # The pixel rule (what reads our frames) finds the mask landmarks on ground truth within ~1 px at 64^2.
    assert np.mean(errors) < 2.0, errors
    a = np.zeros((3, 6, 2))
    b = a.copy()
    b[..., 0] = 3.0
    b[..., 1] = 4.0
    b[1] = np.nan
    assert lm.landmark_distance(a, b) == (5.0, 2)
    distance, frames = lm.landmark_distance(a, b, valid=np.array([False, True, False]))
    assert np.isnan(distance) and frames == 0  # no frame where both are defined


def test_eval_errors_are_one_line(data, run, tmp_path, capsys):
    def fails(argv, *words):
        assert main(["eval"] + argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("s3d-fast eval: error:"), err
        for w in words:
            assert w in err, (w, err)

    fails(["--checkpoint", str(tmp_path / "nope"), "--data", str(data)], "nope")
    fails(["--checkpoint", str(run), "--data", str(tmp_path / "nodata")], "nodata")
    fails(["--checkpoint", str(run), "--data", str(data), "--frames", "3"], "--frames")
    foreign = _save_generator(tmp_path / "foreign", kind="syncnet")
    fails(["--checkpoint", str(foreign), "--data", str(data)], "not an s3d-fast generator")
    newer = _save_generator(tmp_path / "newer")
    meta = json.loads((newer / "config.json").read_text())
    meta["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(meta))
    fails(["--checkpoint", str(newer), "--data", str(data)], "newer")
    empty = tmp_path / "ds_no_heldout"
    shutil.copytree(data, empty)
    manifest = json.loads((empty / "manifest.json").read_text())
    for c in manifest["clips"]:
        c["split"] = "train"
    for i in manifest["identities"]:
        i["split"] = "train"
    (empty / "manifest.json").write_text(json.dumps(manifest))
    fails(["--checkpoint", str(run), "--data", str(empty)], "no clips in split 'heldout'")
    fails(["--checkpoint", str(run), "--data", str(data), "--syncnet", str(tmp_path / "nosync.safetensors")], "nosync")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    fails(["--checkpoint", str(run), "--data", str(data), "--syncnet", str(junk)], "cannot load the lip-sync expert")
    assert not (tmp_path / "out").exists()


def test_real_data_uses_mediapipe_landmarks_on_both(data, run, tmp_path, monkeypatch):
    """A clip without visemes is real video: mouth landmarks come from mediapipe's face
    mesh on the ground truth and on our frames (here a stand-in that records its input),
    and the rule-on-ground-truth figures do not apply."""
    real = tmp_path / "real"
    shutil.copytree(data, real)
    for npz in real.glob("clips/*/*.npz"):
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files if k != "visemes"}
        np.savez(npz, **arrays)
    seen = []

    def fake_mediapipe(frames):
        f = lm._as_hwc_float(frames)
        seen.append(f.shape)
        return np.tile(np.arange(12.0).reshape(1, 6, 2), (f.shape[0], 1, 1)) + f.mean((1, 2, 3))[:, None, None]

    monkeypatch.setattr(lm, "landmarks_mediapipe", fake_mediapipe)
    out = tmp_path / "out"
    assert (
        main(["eval", "--checkpoint", str(run), "--data", str(real), "--frames", "6", "--out", str(out), "--quiet"])
        == 0
    )
    [row] = json.loads((out / "metrics.json").read_text())["clips"]
    assert seen == [(6, 64, 64, 3), (6, 64, 64, 3)]
    assert row["lmd_method"] == "mediapipe" and row["lmd_frames"] == 5 and row["lmd"] > 0
    assert "lmd_rule_on_gt" not in row and "mouth_corr_gt" not in row and np.isfinite(row["mouth_corr"])
