"""A run in phases (``train.phases``): the config in force at each step, a model grown and
partly frozen mid-run, each phase's own learning-rate schedule, and a bit-exact resume."""

import csv
import dataclasses
import math

import pytest
import torch
from model_helpers import FAST_TRAIN, training_interrupted_at

from s3d_fast.checkpoint import RunDirectory, load_checkpoint
from s3d_fast.cli import main
from s3d_fast.config import ConfigError, Phase, check_phases, config_at, phase_spans, small
from s3d_fast.config.presets import demo

FAST = FAST_TRAIN + ["train.eval_every=100"]


def with_phases(cfg, *phases, steps=None):
    train = dataclasses.replace(cfg.train, phases=tuple(phases), steps=steps or cfg.train.steps)
    return dataclasses.replace(cfg, train=train)


def test_config_at_applies_the_started_phases_in_order():
    cfg = with_phases(
        small(), Phase(10, {"train.lr": "1e-3", "loss.sync": "0.2"}), Phase(20, {"train.lr": "5e-4"}), steps=30
    )
    assert config_at(cfg, 9) == cfg
    assert config_at(cfg, 10).train.lr == 1e-3 and config_at(cfg, 10).loss.sync == 0.2
    at_20 = config_at(cfg, 20)
    assert at_20.train.lr == 5e-4 and at_20.loss.sync == 0.2  # earlier phases' settings stay
    assert at_20.train.phases == cfg.train.phases
    assert phase_spans(cfg) == [(0, 10), (10, 20), (20, 30)]
    assert phase_spans(small()) == [(0, small().train.steps)]


@pytest.mark.parametrize(
    "phases, message",
    [
        ((Phase(0, {}),), "must lie after"),
        ((Phase(40, {}),), "before train.steps"),
        ((Phase(10, {}), Phase(10, {})), "must lie after the previous phase's start"),
        ((Phase(10, {"train.steps": "50"}),), "holds for the whole run"),
        ((Phase(10, {"model.cavity_opening": "true"}),), "needs model.mouth_cavity"),
        ((Phase(10, {"loss.sinc": "1"}),), "unknown config key 'loss.sinc'; did you mean loss.sync"),
        ((Phase(10, {"train.lr": "fast"}),), "expected a number"),
    ],
)
def test_a_schedule_that_cannot_run_is_one_clear_error(phases, message):
    with pytest.raises(ConfigError, match=message):
        check_phases(with_phases(small(), *phases, steps=30))


def test_phases_are_set_on_the_command_line_as_json():
    from s3d_fast.config import apply_overrides

    cfg = apply_overrides(small(), ['train.phases=[{"start": 5, "settings": {"train.lr": "1e-4"}}]'])
    assert cfg.train.phases == (Phase(5, {"train.lr": "1e-4"}),)
    with pytest.raises(ConfigError, match="expected JSON"):
        apply_overrides(small(), ["train.phases=[start=5]"])


# From step 2: grow the mouth cavity, train super-resolution alone, at a lower rate.
SECOND_PHASE = (
    '[{"start": 2, "settings": {"model.mouth_cavity": "true", "train.train_only": "superres", "train.lr": "1e-3"}}]'
)


def _argv(data, run, *extra):
    argv = ["train", "--data", str(data), "--out", str(run), "--steps", "4", "--quiet"]
    for o in FAST + ["train.lr=2e-3", f"train.phases={SECOND_PHASE}"]:
        argv += ["--set", o]
    return argv + list(extra)


def _rows(run):
    with open(run / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r["stage"] == "generator"]


@pytest.mark.slow
def test_a_phase_grows_the_model_freezes_the_rest_and_restarts_its_schedule(data, tmp_path):
    run = tmp_path / "run"
    assert main(_argv(data, run)) == 0
    first = load_checkpoint(RunDirectory(run).checkpoint_path(2))
    last = load_checkpoint(RunDirectory(run).checkpoint_path(4))
    assert not first.config["model"]["mouth_cavity"] and last.config["model"]["mouth_cavity"]
    assert last.config["train"]["train_only"] == "superres" and last.config["train"]["phases"]
    added = set(last.model_state) - set(first.model_state)
    assert added and all("cavity" in k for k in added)
    for key, value in first.model_state.items():
        changed = not torch.equal(value, last.model_state[key])
        assert changed == key.startswith("superres."), key
    # Phase one warms up over 1 step and decays over 2; phase two decays from its own rate.
    lr = {int(r["step"]): float(r["lr"]) for r in _rows(run)}
    cosine = lambda progress: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))  # noqa: E731
    assert lr[1] == pytest.approx(2e-3 * cosine(0.0))
    assert lr[2] == pytest.approx(2e-3 * cosine(1.0))
    assert lr[3] == pytest.approx(1e-3 * cosine(0.5))
    assert lr[4] == pytest.approx(1e-3 * cosine(1.0))


@pytest.mark.slow
def test_a_run_in_phases_resumes_bit_for_bit(data, tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert main(_argv(data, straight)) == 0
    with training_interrupted_at(3):
        assert main(_argv(data, halves)) == 130
    assert [s for s, _ in RunDirectory(halves).checkpoints()] == [2, 3]
    assert main(["train", "--data", str(data), "--out", str(halves), "--resume", "--quiet"]) == 0
    a = load_checkpoint(RunDirectory(straight).latest())
    b = load_checkpoint(RunDirectory(halves).latest())
    assert a.step == b.step == 4 and set(a.model_state) == set(b.model_state)
    for key in a.model_state:
        assert torch.equal(a.model_state[key], b.model_state[key]), key
    assert [r["total"] for r in _rows(straight)] == [r["total"] for r in _rows(halves)]


@pytest.mark.slow
def test_the_demo_schedule_runs_in_miniature(data, tmp_path, monkeypatch):
    """``--config demo``'s four phases, one step each: the cavity grown, super-resolution
    alone, then the interior grown and trained alone, everything else left as it was. Data
    sets are built only where a phase changes what they draw (at the cavity's phase), and
    the earlier ones are released first: each holds every decoded clip."""
    import gc
    import json
    import weakref

    from s3d_fast.training.trainer import Trainer

    built, build = [], Trainer.datasets

    def counted(self, cfg):
        gc.collect()
        alive = [ref() is not None for ref in built]
        train, heldout = build(self, cfg)
        built.append(weakref.ref(train))
        assert not any(alive), "the previous phase's data sets are still held"
        return train, heldout

    monkeypatch.setattr(Trainer, "datasets", counted)
    phases = [{"start": i + 1, "settings": p.settings} for i, p in enumerate(demo().train.phases)]
    run = tmp_path / "run"
    argv = ["train", "--config", "demo", "--data", str(data), "--out", str(run), "--steps", "4", "--quiet"]
    for o in FAST + ["train.checkpoint_every=1", f"train.phases={json.dumps(phases)}"]:
        argv += ["--set", o]
    assert main(argv) == 0
    assert len(built) == 2  # the run's start and the cavity's phase (sync frames, closed sources)
    assert [s for s, _ in RunDirectory(run).checkpoints()] == [1, 2, 3, 4]  # each phase's last step kept
    before = load_checkpoint(RunDirectory(run).checkpoint_path(3))
    last = load_checkpoint(RunDirectory(run).checkpoint_path(4))
    assert last.config["model"]["mouth_interior"] and last.config["model"]["interior_alone"]
    assert not before.config["model"]["mouth_interior"]
    added = set(last.model_state) - set(before.model_state)
    assert added and all(k.startswith("interior.") for k in added)
    for key, value in before.model_state.items():
        assert torch.equal(value, last.model_state[key]), key
