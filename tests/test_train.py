"""``s3d-fast train`` end to end at toy sizes: checkpoints, logs, bit-for-bit resume,
two gloo processes under DistributedDataParallel, and its error messages."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from model_helpers import FAST_TRAIN, training_interrupted_at

from s3d_fast.checkpoint import RunDirectory, load_checkpoint
from s3d_fast.cli import main


def _sets(overrides):
    out = []
    for o in overrides:
        out += ["--set", o]
    return out


pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(run):
    with open(Path(run) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoints_logs_and_resumes_bit_for_bit(data, tmp_path):
    straight = tmp_path / "straight"
    assert (
        main(
            ["train", "--data", str(data), "--out", str(straight), "--steps", "4", "--quiet", "--profile-steps", "1"]
            + _sets(FAST_TRAIN)
        )
        == 0
    )
    run = RunDirectory(straight)
    assert [s for s, _ in run.checkpoints()] == [2, 4]
    assert (straight / "curves.png").stat().st_size > 0
    profile = (straight / "profile.txt").read_text()
    assert "backward" in profile and "super-resolution" in profile and "deformation" in profile
    rows = _rows(straight)
    assert [r["step"] for r in rows if r["stage"] == "generator"] == ["1", "2", "3", "4"]
    assert any(r["stage"] == "eval" and float(r["heldout_psnr"]) > 0 for r in rows)

    # Interrupt a run of the same length after 2 steps (Ctrl-C saves a checkpoint), resume it.
    halves = tmp_path / "halves"
    with training_interrupted_at(2):
        assert (
            main(["train", "--data", str(data), "--out", str(halves), "--steps", "4", "--quiet"] + _sets(FAST_TRAIN))
            == 130
        )
    assert [s for s, _ in RunDirectory(halves).checkpoints()] == [2]
    assert main(["train", "--data", str(data), "--out", str(halves), "--resume", "--quiet"]) == 0
    a = load_checkpoint(run.latest(), with_training=True)
    b = load_checkpoint(RunDirectory(halves).latest(), with_training=True)
    assert a.step == b.step == 4
    for k in a.model_state:
        assert torch.equal(a.model_state[k], b.model_state[k]), k
    assert [r["step"] for r in _rows(halves) if r["stage"] == "generator"] == ["1", "2", "3", "4"]
    last = [[r for r in _rows(d) if r["stage"] == "generator"][-1] for d in (halves, straight)]
    assert last[0]["lr"] == last[1]["lr"] and last[0]["total"] == last[1]["total"]


def test_train_refuses_to_overwrite_and_explains(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "2", "--quiet"] + _sets(FAST_TRAIN)) == 0
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "2", "--quiet"] + _sets(FAST_TRAIN)) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "new"), "--resume"]) == 1
    assert "without --resume" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "x"), "--set", "model.nope=1"]) == 1
    assert "model.nope" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "y")] + _sets(FAST_TRAIN)) == 1
    assert "absent" in capsys.readouterr().err


def test_deterministic_mode_is_on_while_training_and_kept_by_resume(data, tmp_path, monkeypatch):
    from s3d_fast.training.generator_stage import GeneratorStage

    seen = []  # torch's flag at each generator step
    original = GeneratorStage.train_step

    def observed(self, update=True):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(self, update)

    monkeypatch.setattr(GeneratorStage, "train_step", observed)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # restored (unset) after the test
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    assert not torch.are_deterministic_algorithms_enabled()
    out = tmp_path / "det"
    args = ["train", "--data", str(data), "--out", str(out), "--quiet"]
    try:
        assert main(args + ["--steps", "2", "--deterministic"] + _sets(FAST_TRAIN)) == 0
        assert seen == [True, True]
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert json.loads((out / "config.json").read_text())["config"]["train"]["deterministic"] is True
        # A fresh process would start with the flag off: --resume turns it on from the run's config.
        torch.use_deterministic_algorithms(False)
        seen.clear()
        assert main(args + ["--steps", "4", "--resume"]) == 0
        assert seen == [True, True]
        # Without it, training leaves the flag as it found it.
        torch.use_deterministic_algorithms(False)
        seen.clear()
        assert (
            main(
                ["train", "--data", str(data), "--out", str(tmp_path / "plain"), "--quiet", "--steps", "1"]
                + _sets(FAST_TRAIN)
            )
            == 0
        )
        assert seen == [False]
    finally:
        torch.use_deterministic_algorithms(False)


def test_worker_processes_get_deterministic_mode():
    import argparse

    from s3d_fast.training.cli import add_arguments
    from s3d_fast.training.command import argv_for_workers

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    on = parser.parse_args(["--data", "d", "--out", "o", "--nproc", "2", "--deterministic"])
    assert "--deterministic" in argv_for_workers(on)
    worker = parser.parse_args(argv_for_workers(on))
    assert worker.deterministic and worker.nproc == 1
    assert "--deterministic" not in argv_for_workers(parser.parse_args(["--data", "d", "--out", "o", "--nproc", "2"]))


def test_print_config(capsys):
    assert main(["train", "--print-config", "--set", "train.lr=0.5"]) == 0
    text = capsys.readouterr().out
    assert "lr: 0.5" in text and "nerf_resolution: 64" in text
    assert main(["train", "--steps", "3"]) == 1
    assert "--data and --out required" in capsys.readouterr().err


def test_two_gloo_processes_keep_identical_replicas_and_learn(data, tmp_path):
    out = tmp_path / "ddp"
    sets = _sets(FAST_TRAIN + ["train.checkpoint_every=100", "train.eval_every=100", "train.lr=0.01"])
    code = main(["train", "--nproc", "2", "--data", str(data), "--out", str(out), "--steps", "8", "--quiet"] + sets)
    assert code == 0
    rows = _rows(out)
    assert float([r for r in rows if r["stage"] == "replicas"][0]["replica_divergence"]) == 0.0
    losses = [float(r["total"]) for r in rows if r["stage"] == "generator"]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_two_gloo_processes_train_the_interior_with_every_mouth_closed(data, tmp_path):
    """The interior's painter runs only where a mouth opens; with the cavity untrained no
    frame opens, so neither process uses it, and DDP must not stop on that."""
    out = tmp_path / "ddp_interior"
    grown = ["model.mouth_cavity=true", "model.cavity_opening=true", "model.mouth_interior=true"]
    sets = _sets(FAST_TRAIN + grown + ["train.train_only=interior", "train.checkpoint_every=100"])
    code = main(["train", "--nproc", "2", "--data", str(data), "--out", str(out), "--steps", "3", "--quiet"] + sets)
    assert code == 0
    rows = _rows(out)
    assert float([r for r in rows if r["stage"] == "replicas"][0]["replica_divergence"]) == 0.0
    assert len([r for r in rows if r["stage"] == "generator"]) == 3


def test_stage_one_expert_feeds_the_sync_loss(data, tmp_path):
    out = tmp_path / "sync"
    # With the options the demo recipe leaves off: the source reprojected in training, its
    # mouth kept out of the blend, and drawn from the frames with the least open mouths.
    sets = _sets(
        FAST_TRAIN
        + [
            "train.sync_steps=20",
            "train.sync_batch=8",
            "train.sync_start=1",
            "loss.sync=0.5",
            "train.reproject_source=true",
            "model.mouth_keep_out=0.05",
            "train.source_mouth_quantile=0.5",
        ]
    )
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "2", "--quiet"] + sets) == 0
    assert (out / "syncnet.safetensors").stat().st_size > 0
    rows = _rows(out)
    assert any(r["stage"] == "sync" for r in rows)
    gen = [r for r in rows if r["stage"] == "generator"]
    assert gen[0]["sync"] == "" and float(gen[1]["sync"]) > 0  # on from train.sync_start


def test_train_only_updates_the_named_modules(data, tmp_path, capsys):
    out = tmp_path / "sr_only"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "2", "--quiet"] + _sets(FAST_TRAIN)) == 0
    # Resumed with only super-resolution trained: it changes, the radiance field does not.
    assert (
        main(
            ["train", "--data", str(data), "--out", str(out), "--steps", "4", "--quiet", "--resume"]
            + _sets(FAST_TRAIN + ["train.train_only=superres"])
        )
        == 0
    )
    before = load_checkpoint(RunDirectory(out).checkpoint_path(2)).model_state
    after = load_checkpoint(RunDirectory(out).checkpoint_path(4)).model_state
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"superres"}

    bad = tmp_path / "bad"
    assert (
        main(
            ["train", "--data", str(data), "--out", str(bad), "--steps", "1", "--quiet"]
            + _sets(FAST_TRAIN + ["train.train_only=superres,nerf"])
        )
        == 1
    )
    assert "no module 'nerf'" in capsys.readouterr().err
    assert (
        main(
            ["train", "--data", str(data), "--out", str(tmp_path / "bad_q"), "--steps", "1", "--quiet"]
            + _sets(FAST_TRAIN + ["train.source_mouth_quantile=0"])
        )
        == 1
    )
    assert "source_mouth_quantile must be in (0, 1]" in capsys.readouterr().err


def test_init_starts_a_new_run_from_another_runs_weights(data, tmp_path, capsys):
    base = tmp_path / "base"
    opening = ["model.mouth_cavity=true", "model.cavity_opening=true"]
    assert (
        main(
            ["train", "--data", str(data), "--out", str(base), "--steps", "2", "--quiet"] + _sets(FAST_TRAIN + opening)
        )
        == 0
    )
    start = load_checkpoint(RunDirectory(base).checkpoint_path(2)).model_state

    # The model's settings come from the checkpoint (no model.* here but the grown interior);
    # the optimizer and schedule start at step 0; the interior is new and trains with SR alone.
    grown = tmp_path / "grown"
    train_only = [o for o in FAST_TRAIN if not o.startswith("model.")]
    grow = train_only + ["model.mouth_interior=true", "train.train_only=interior,superres"]
    args = ["train", "--data", str(data), "--out", str(grown), "--steps", "2", "--init", str(base)]
    assert main(args + _sets(grow)) == 0
    assert f"initialised from {RunDirectory(base).checkpoint_path(2)}" in capsys.readouterr().out
    assert [s for s, _ in RunDirectory(grown).checkpoints()] == [2]
    after = load_checkpoint(RunDirectory(grown).checkpoint_path(2)).model_state
    assert all(torch.equal(after[k], v) for k, v in start.items() if not k.startswith(("superres", "interior")))
    assert any(not torch.equal(after[k], v) for k, v in start.items() if k.startswith("superres"))
    assert "interior.cells" in after and "interior.cells" not in start
    saved = json.loads((grown / "config.json").read_text())
    assert saved["init"] == str(base) and saved["config"]["model"]["mouth_cavity"] is True

    # --resume before the run's first checkpoint starts from the same weights again.
    again = tmp_path / "again"
    assert main(args[:4] + [str(again), "--steps", "2", "--init", str(base), "--quiet"] + _sets(grow)) == 0
    for _, path in RunDirectory(again).checkpoints():
        shutil.rmtree(path)
    assert main(["train", "--data", str(data), "--out", str(again), "--resume", "--quiet"]) == 0
    resumed = load_checkpoint(RunDirectory(again).checkpoint_path(2)).model_state
    assert all(torch.equal(resumed[k], v) for k, v in start.items() if not k.startswith(("superres", "interior")))

    # Refused in one line: both --init and --resume, a folder that is no checkpoint, weights
    # that do not fit the settings asked for.
    assert main(["train", "--data", str(data), "--out", str(again), "--resume", "--init", str(base)]) == 1
    assert "--init starts a new run and --resume continues one" in capsys.readouterr().err
    assert (
        main(["train", "--data", str(data), "--out", str(tmp_path / "x"), "--init", str(tmp_path)] + _sets(grow)) == 1
    )
    assert "--init:" in capsys.readouterr().err
    unfit = grow + ["model.decoder_hidden=24"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "y"), "--init", str(base)] + _sets(unfit)) == 1
    assert "do not fit" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
