"""Checkpoints: round trips (weights, optimizer, scheduler, RNG), atomicity, every error."""

import json
import os
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import s3d_fast.atomic as atomic_mod
import s3d_fast.checkpoint as ckpt_mod
import s3d_fast.checkpoint.format as format_mod
from s3d_fast.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    RunDirectory,
    StateDictMismatchError,
    load_checkpoint,
    load_model_state,
    resolve_checkpoint,
    restore_rng,
    save_checkpoint,
)
from s3d_fast.errors import S3DError


class Net(torch.nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.drop = torch.nn.Dropout(0.2)
        self.fc2 = torch.nn.Linear(hidden, 1)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        self.count += 1
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


def _train_steps(model, opts, scheds, n):
    """Steps whose data come from all three global RNGs, so RNG restore matters."""
    trace = []
    for _ in range(n):
        x = torch.randn(16, 4) + float(np.random.rand()) + random.random()
        y = x.sum(dim=1, keepdim=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        for s in scheds:
            s.step()
        trace.append(
            [p.detach().clone() for p in model.parameters()]
            + [torch.tensor([g["lr"] for o in opts for g in o.param_groups])]
        )
    return trace


def _make():
    model = Net()
    adam = torch.optim.Adam(model.fc1.parameters(), lr=1e-2)
    sgd = torch.optim.SGD(model.fc2.parameters(), lr=1e-2, momentum=0.9)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(adam, max_lr=0.05, total_steps=20)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd)  # holds inf: needs tagging
    return model, adam, sgd, onecycle, plateau


def test_resume_is_bit_for_bit(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    model, adam, sgd, onecycle, plateau = _make()
    _train_steps(model, [adam, sgd], [onecycle], 4)
    save_checkpoint(
        tmp_path / "ck",
        model_state=model.state_dict(),
        config={"hidden": 8},
        step=4,
        extra={"stage": "generator", "best": 1.5},
        optimizers={"adam": adam.state_dict(), "sgd": sgd.state_dict()},
        schedulers={"onecycle": onecycle.state_dict(), "plateau": plateau.state_dict()},
    )
    expected = _train_steps(model, [adam, sgd], [onecycle], 5)

    # A different process state: other seeds, fresh objects.
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    model2, adam2, sgd2, onecycle2, plateau2 = _make()
    ck = load_checkpoint(tmp_path / "ck", with_training=True)
    assert ck.step == 4 and ck.config == {"hidden": 8}
    assert ck.extra == {"stage": "generator", "best": 1.5}
    load_model_state(model2, ck.model_state)
    adam2.load_state_dict(ck.optimizers["adam"])
    sgd2.load_state_dict(ck.optimizers["sgd"])
    onecycle2.load_state_dict(ck.schedulers["onecycle"])
    plateau2.load_state_dict(ck.schedulers["plateau"])
    assert plateau2.best == float("inf")
    assert isinstance(adam2.state_dict()["param_groups"][0]["betas"], tuple)
    restore_rng(ck)
    got = _train_steps(model2, [adam2, sgd2], [onecycle2], 5)
    for a, b in zip(expected, got):
        for ta, tb in zip(a, b):
            assert torch.equal(ta, tb)
    assert int(model2.count) == int(model.count)


def test_files_and_metadata(tmp_path):
    model = Net()
    path = save_checkpoint(
        tmp_path / "run" / "ck", model_state=model.state_dict(), config={"a": [1, 2]}, step=7, rng=False
    )
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    meta = json.loads((path / "config.json").read_text())
    assert meta["format"] == "s3d-fast-checkpoint" and meta["format_version"] == FORMAT_VERSION
    assert meta["step"] == 7 and meta["config"] == {"a": [1, 2]} and meta["extra"] == {}
    assert meta["s3d_fast_version"] and meta["created"].endswith("+00:00")
    assert set(load_file(str(path / "model.safetensors"))) == set(model.state_dict())
    ck = load_checkpoint(path)
    assert ck.optimizers is None and ck.rng is None and not ck.has_training_state
    with pytest.raises(CheckpointError, match="holds no training state"):
        load_checkpoint(path, with_training=True)
    with pytest.raises(CheckpointError, match="has no RNG state"):
        restore_rng(ck)
    # No pickle anywhere: every file is JSON or safetensors.
    for name in os.listdir(path):
        assert not (path / name).read_bytes().startswith(b"\x80")


def test_tied_and_view_tensors_are_saved(tmp_path):
    w = torch.randn(4, 4)
    state = {"a": w, "b": w, "row": w[1], "t": w.t()}  # shared storage, a view, non-contiguous
    save_checkpoint(tmp_path / "ck", model_state=state, config={}, step=0, rng=False)
    back = load_checkpoint(tmp_path / "ck").model_state
    for k, v in state.items():
        assert torch.equal(back[k], v)


def test_replace_existing_and_run_directory(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert run.latest() is None and run.checkpoints() == []
    assert run.checkpoint_path(100).name == "step_00000100"
    assert run.checkpoint_path(100).parent == tmp_path / "run" / "checkpoints"
    for step in (100, 200, 300, 400):
        save_checkpoint(
            run.checkpoint_path(step), model_state={"w": torch.full((2,), step)}, config={}, step=step, rng=False
        )
    # Replace step 400 in place (e.g. saved again at exit).
    save_checkpoint(run.checkpoint_path(400), model_state={"w": torch.full((2,), 401)}, config={}, step=400, rng=False)
    assert load_checkpoint(run.latest()).model_state["w"][0] == 401
    # Half-written and foreign directories are ignored.
    (run.checkpoints_dir / ".step_00000500.tmp-999999999-abcd").mkdir()
    (run.checkpoints_dir / "step_00000600").mkdir()  # no config.json: incomplete
    (run.checkpoints_dir / "notes").mkdir()
    assert run.latest() == run.checkpoint_path(400)
    assert [s for s, _ in run.checkpoints()] == [100, 200, 300, 400]
    removed = run.prune(keep=2)
    assert run.checkpoint_path(100) in removed and run.checkpoint_path(200) in removed
    assert [s for s, _ in run.checkpoints()] == [300, 400]
    assert not (run.checkpoints_dir / ".step_00000500.tmp-999999999-abcd").exists()  # dead pid
    assert (run.checkpoints_dir / "notes").exists()
    # A writer that died mid-replace (fallback path) left step 400 aside: prune restores it.
    os.rename(run.checkpoint_path(400), run.checkpoints_dir / ".step_00000400.old-999999999-ab")
    assert run.latest() == run.checkpoint_path(300)
    run.prune(keep=2)
    assert run.latest() == run.checkpoint_path(400)
    with pytest.raises(ValueError):
        run.prune(keep=0)
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == [
        "notes",
        "step_00000300",
        "step_00000400",
        "step_00000600",
    ]
    # Steps named in keep_steps (each phase's last step) stay, however old.
    for step in (500, 700):
        save_checkpoint(run.checkpoint_path(step), model_state={"w": torch.zeros(2)}, config={}, step=step, rng=False)
    run.prune(keep=1, keep_steps=[300, 999])
    assert [s for s, _ in run.checkpoints()] == [300, 700]


@pytest.mark.parametrize("exchange", [True, False])
def test_failed_write_leaves_old_checkpoint_intact(tmp_path, monkeypatch, exchange):
    if not exchange:  # exercise the rename-aside fallback too
        monkeypatch.setattr(atomic_mod, "_exchange", lambda a, b: False)
    path = tmp_path / "ck"
    save_checkpoint(path, model_state={"w": torch.ones(3)}, config={"v": 1}, step=1)

    real_write = format_mod._write_text

    def failing_write(p, text):
        if p.name == "config.json":  # everything else already written
            raise OSError(28, "No space left on device")
        real_write(p, text)

    monkeypatch.setattr(format_mod, "_write_text", failing_write)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model_state={"w": torch.zeros(3)}, config={"v": 2}, step=2)
    monkeypatch.setattr(format_mod, "_write_text", real_write)
    # A KeyboardInterrupt mid-write (Ctrl-C) cleans up too.

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(format_mod, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model_state={"w": torch.zeros(3)}, config={"v": 3}, step=3)
    ck = load_checkpoint(path, with_training=True)
    assert ck.step == 1 and ck.config == {"v": 1} and torch.equal(ck.model_state["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ck"]  # no temp or aside directories left
    monkeypatch.undo()
    save_checkpoint(path, model_state={"w": torch.zeros(3)}, config={"v": 2}, step=2)
    assert load_checkpoint(path).step == 2 and os.listdir(tmp_path) == ["ck"]


def test_refuses_to_replace_what_is_not_a_checkpoint(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="refusing to replace .*not an s3d-fast checkpoint"):
        save_checkpoint(tmp_path / "data", model_state={}, config={}, step=0)
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="a file is in the way"):
        save_checkpoint(tmp_path / "file", model_state={}, config={}, step=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_state={"w": 3}), r"model_state\['w'\] is a int, not a tensor"),
        (dict(model_state=[torch.ones(1)]), "model_state must be a state_dict"),
        (dict(step=-1), "step must be a non-negative int"),
        (dict(config="small"), "config must be a dict"),
        (dict(extra={"f": object()}), "checkpoint config/extra is not JSON-serialisable"),
        (dict(extra={"x": float("nan")}), "not JSON-serialisable"),
        (
            dict(optimizers={"o": {"state": {0: {"fn": print}}}}),
            "cannot save optimizers/o/state/0/fn: values of type builtin_function_or_method",
        ),
    ],
)
def test_save_errors(tmp_path, kwargs, message):
    args = dict(model_state={"w": torch.ones(1)}, config={}, step=0)
    args.update(kwargs)
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(tmp_path / "ck", **args)
    assert not any(tmp_path.iterdir())


@pytest.fixture
def saved(tmp_path):
    model = Net()
    opt = torch.optim.Adam(model.parameters())
    return save_checkpoint(
        tmp_path / "ck", model_state=model.state_dict(), config={"x": 1}, step=3, optimizers={"adam": opt.state_dict()}
    )


def _edit_meta(path, **changes):
    meta = json.loads((path / "config.json").read_text())
    meta.update(changes)
    (path / "config.json").write_text(json.dumps(meta))


def _one_line(exc):
    assert isinstance(exc, S3DError) and "\n" not in str(exc)
    return str(exc)


def test_load_errors(saved, tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "f.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="is not a checkpoint directory"):
        load_checkpoint(tmp_path / "f.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointFormatError, match="not an s3d-fast checkpoint: no config.json"):
        load_checkpoint(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="map_location 'gpu0' is not a device"):
        load_checkpoint(saved, map_location="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(CheckpointError, match="CUDA is not available here"):
            load_checkpoint(saved, map_location="cuda")


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (
            lambda p: _edit_meta(p, format_version=2),
            CheckpointFormatError,
            r"checkpoint format 2 is newer than this s3d-fast \(reads 1\): upgrade s3d-fast",
        ),
        (
            lambda p: _edit_meta(p, format_version=0),
            CheckpointFormatError,
            "checkpoint format 0 is not one this s3d-fast reads",
        ),
        (lambda p: _edit_meta(p, format_version="1"), CheckpointFormatError, "is not a version number"),
        (
            lambda p: _edit_meta(p, format="eg3d"),
            CheckpointFormatError,
            "is not an s3d-fast checkpoint .*format is 'eg3d'",
        ),
        (lambda p: _edit_meta(p, step="3"), CheckpointCorruptError, "lacks a valid 'step'"),
        (
            lambda p: (p / "config.json").write_text('{"format": "s3d-fa'),
            CheckpointCorruptError,
            "config.json is corrupt: not valid JSON",
        ),
        (lambda p: (p / "config.json").write_text("[1]"), CheckpointCorruptError, "expected a JSON object"),
        (
            lambda p: (p / "model.safetensors").unlink(),
            CheckpointNotFoundError,
            "is incomplete: model.safetensors missing",
        ),
        (lambda p: (p / "training.json").unlink(), CheckpointNotFoundError, "is incomplete: training.json missing"),
        (
            lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:50]),
            CheckpointCorruptError,
            "model.safetensors is corrupt",
        ),
        (
            lambda p: (p / "model.safetensors").write_bytes(b"\xff" * 64),
            CheckpointCorruptError,
            "model.safetensors is corrupt",
        ),
    ],
)
def test_damaged_checkpoints(saved, damage, error, message):
    damage(saved)
    with pytest.raises(error, match=message) as info:
        load_checkpoint(saved)
    _one_line(info.value)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "training.safetensors").write_bytes(b"12345678"), "training.safetensors is corrupt"),
        (lambda p: (p / "training.json").write_text("{"), "training.json is corrupt"),
        (
            lambda p: (p / "training.json").write_text(
                (p / "training.json").read_text().replace('"step": 3', '"step": 9')
            ),
            "training state of step 9 beside weights of step 3",
        ),
        (
            lambda p: (p / "training.json").write_text(
                (p / "training.json").read_text().replace("exp_avg_sq", "exp_avg_zz")
            ),
            "refers to tensor .*exp_avg_zz.*which training.safetensors lacks",
        ),
        (
            lambda p: (p / "training.json").write_text(
                (p / "training.json").read_text().replace('"format_version": 1', '"format_version": 5')
            ),
            "checkpoint format 5 is newer",
        ),
    ],
)
def test_damaged_training_state(saved, damage, message):
    model = Net()
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    save_checkpoint(saved, model_state=model.state_dict(), config={}, step=3, optimizers={"adam": opt.state_dict()})
    load_checkpoint(saved, with_training=True)  # fine before the damage
    damage(saved)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(saved, with_training=True)
    _one_line(info.value)
    assert load_checkpoint(saved).step == 3 or "newer" in message  # weights alone still load


def test_load_model_state_errors():
    model = Net(hidden=8)
    state = Net(hidden=8).state_dict()
    missing, unexpected = load_model_state(model, state)
    assert missing == [] and unexpected == []
    assert torch.equal(model.fc1.weight, state["fc1.weight"])

    with pytest.raises(StateDictMismatchError) as info:
        load_model_state(model, Net(hidden=16).state_dict())
    msg = _one_line(info.value)
    assert "do not fit this Net" in msg and "fc1.weight (16, 4) vs (8, 4)" in msg
    assert msg.count(" vs ") == 4 and "3 shape mismatches" in msg  # fc2.bias fits
    five = Net(hidden=16)
    five.register_buffer("w3", torch.zeros(2))
    five.register_buffer("w4", torch.zeros(2))
    six = Net(hidden=8)
    six.register_buffer("w3", torch.zeros(3))
    six.register_buffer("w4", torch.zeros(3))
    with pytest.raises(StateDictMismatchError, match=r"5 shape mismatches .* and 2 more"):
        load_model_state(six, five.state_dict())

    partial = {k: v for k, v in state.items() if not k.startswith("fc2")}
    partial["extra.weight"] = torch.zeros(1)
    with pytest.raises(
        StateDictMismatchError,
        match=r"2 missing keys \(fc2.weight, fc2.bias\); 1 unexpected key "
        r"\(extra.weight\)",
    ):
        load_model_state(model, partial)
    missing, unexpected = load_model_state(model, partial, strict=False)
    assert missing == ["fc2.weight", "fc2.bias"] and unexpected == ["extra.weight"]

    many = dict(state, **{f"x{i}": torch.zeros(1) for i in range(5)})
    with pytest.raises(StateDictMismatchError, match=r"5 unexpected keys \(x0, x1, x2, ... 2 more"):
        load_model_state(model, many)


def test_load_model_state_through_ddp_prefixes():
    src = Net()
    wrapped_state = {"module." + k: v for k, v in src.state_dict().items()}
    dst = Net()
    load_model_state(dst, wrapped_state)  # saved from a DDP wrapper, loaded bare
    assert torch.equal(dst.fc2.weight, src.fc2.weight)
    dp = torch.nn.DataParallel(Net())  # a wrapper is looked through
    load_model_state(dp, src.state_dict())
    assert torch.equal(dp.module.fc1.bias, src.fc1.bias)


def test_restore_rng_from_dict_and_bad_state():
    state = ckpt_mod.capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    with pytest.raises(CheckpointCorruptError, match="RNG state is malformed"):
        restore_rng({"torch": torch.zeros(3, dtype=torch.uint8), "numpy": None, "python": None})


def test_checkpoint_dataclass_fields():
    names = set(Checkpoint.__dataclass_fields__)
    assert {"config", "step", "extra", "model_state", "optimizers", "schedulers", "rng"} <= names


def test_resolve_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(CheckpointNotFoundError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "run")
    run.checkpoints_dir.mkdir(parents=True)
    with pytest.raises(CheckpointNotFoundError, match="has no complete checkpoint yet"):
        resolve_checkpoint(run.root)
    for step in (5, 10):
        save_checkpoint(run.checkpoint_path(step), model_state={}, config={}, step=step, rng=False)
    assert resolve_checkpoint(run.root) == run.checkpoint_path(10)
    assert resolve_checkpoint(run.checkpoint_path(5)) == run.checkpoint_path(5)
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointFormatError, match="no config.json"):
        resolve_checkpoint(tmp_path / "plain")
