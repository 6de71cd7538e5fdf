"""What a killed or failed command leaves, and what the next one makes of it: outputs that
are not regular files are refused, dead writers' temporaries swept, SIGTERM handled as
Ctrl-C, a damaged newest checkpoint skipped on --resume, the lip-sync stage's metric rows
kept, and 16-bit grey photos read as what they show."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from model_helpers import FAST_TRAIN, make_tiny_synthtalk
from PIL import Image
from render_fixtures import write_speech

from s3d_fast import atomic
from s3d_fast.checkpoint import RunDirectory
from s3d_fast.render.source import read_image
from s3d_fast.training.metric_log import MetricLog, read_metrics


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_existing_outputs_that_are_not_regular_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)
    target = tmp_path / "target.txt"
    target.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    for path, message in ((fifo, "is a FIFO"), (link, "symbolic link"), ("/dev/null", "character device")):
        with pytest.raises(atomic.OutputPathError, match=message):
            atomic.write_text(path, "new")
    with pytest.raises(atomic.OutputPathError, match="not a folder"):
        with atomic.atomic_directory(target):
            pass
    assert link.is_symlink() and target.read_text() == "keep" and os.path.exists("/dev/null")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.mp4", "link.txt", "target.txt"]


def test_dead_writers_temporaries_are_swept_and_no_other(tmp_path):
    out = tmp_path / "out.mp4"
    dead, alive = dead_pid(), os.getppid()
    stale = tmp_path / f".out.mp4.tmp-{dead}-0123abcd.mp4"
    live = tmp_path / f".out.mp4.tmp-{alive}-0123abcd.mp4"
    foreign = tmp_path / f".out.mp4.tmp-{dead}-user.mp4"  # not our naming
    other = tmp_path / f".other.mp4.tmp-{dead}-0123abcd.mp4"  # another output's
    stale_dir = tmp_path / f".ckpt.tmp-{dead}-0123abcd"
    for path in (stale, live, foreign, other):
        path.write_bytes(b"x")
    stale_dir.mkdir()
    atomic.write_bytes(out, b"video")
    with atomic.atomic_directory(tmp_path / "ckpt") as folder:
        (folder / "a").write_text("a")
    assert out.read_bytes() == b"video"
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and foreign.exists() and other.exists()


@contextlib.contextmanager
def running(argv):
    """``s3d-fast argv`` in a process of its own, killed if the test ends while it runs."""
    proc = subprocess.Popen([sys.executable, "-m", "s3d_fast.cli", *map(str, argv)], stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_sigterm_during_a_render_leaves_no_temporary(tmp_path):
    speech, _ = write_speech(tmp_path / "s.wav", seconds=20.0)
    out = tmp_path / "out.mp4"
    # Without the bake-time adaptation: on a loaded machine its 100 steps alone took longer
    # than the deadline, and what is tested here starts after them.
    argv = ["render", "--audio", speech, "--out", out, "--quiet", "--device", "cpu", "--adapt-steps", "0"]
    with running(argv) as proc:
        deadline = time.monotonic() + 240
        while not any(p.name.startswith(".out.mp4.tmp-") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "the render never started writing"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "s3d-fast render: terminated" and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("leftovers") / "data"
    make_tiny_synthtalk(root)
    return root


def train_argv(data, run, *extra):
    return (
        ["train", "--data", data, "--out", run, "--device", "cpu", "--quiet"]
        + [a for o in FAST_TRAIN for a in ("--set", o)]
        + list(extra)
    )


def test_sigterm_during_training_saves_a_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    argv = train_argv(data, run, "--steps", "100000", "--set", "train.checkpoint_every=100000")
    with running(argv) as proc:
        deadline = time.monotonic() + 240
        while not (run / "metrics.csv").is_file() or "generator" not in (run / "metrics.csv").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "saving a checkpoint" in err and "Traceback" not in err
    assert RunDirectory(run).latest() is not None


def test_resume_skips_a_damaged_newest_checkpoint(data, tmp_path):
    from s3d_fast.cli import main

    run = tmp_path / "run"
    assert main([str(a) for a in train_argv(data, run, "--steps", "4")]) == 0
    steps = [s for s, _ in RunDirectory(run).checkpoints()]
    assert steps == [2, 4]
    newest = RunDirectory(run).latest()
    (newest / "model.safetensors").write_bytes(b"\0" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "s3d_fast.cli", *map(str, train_argv(data, run, "--steps", "6", "--resume"))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: skipping a damaged checkpoint")]
    assert len(warnings) == 1 and "step_00000004" in warnings[0]
    assert [s for s, _ in RunDirectory(run).checkpoints()][-1] == 6
    generator_steps = [
        s for s, st in zip(*(read_metrics(run / "metrics.csv")[k] for k in ("step", "stage"))) if st == "generator"
    ]
    assert generator_steps == sorted(generator_steps) and generator_steps[-1] == 6


def test_resume_keeps_the_lip_sync_stages_rows(tmp_path):
    log = MetricLog(tmp_path)
    for step in (10, 20, 30):
        log.log(step, "sync", sync_loss=0.5)
    log.log(5, "generator", loss=1.0)
    log.log(25, "generator", loss=0.9)
    log.close()
    # resumed from generator step 5: the later generator row goes, every lip-sync row stays
    resumed = MetricLog(tmp_path, resume_step=5, keep_stages=("sync",))
    resumed.close()
    kept = read_metrics(tmp_path / "metrics.csv")
    assert list(zip(kept["step"], kept["stage"])) == [(10, "sync"), (20, "sync"), (30, "sync"), (5, "generator")]
    # killed before its first generator checkpoint: only the lip-sync rows stay
    MetricLog(tmp_path, resume_step=-1, keep_stages=("sync",)).close()
    assert read_metrics(tmp_path / "metrics.csv")["stage"] == ["sync"] * 3


def test_a_failed_run_leaves_no_folder(data, tmp_path):
    from s3d_fast.cli import main

    run = tmp_path / "run"
    argv = train_argv(data, run, "--steps", "2", "--set", "train.train_only=bogus")
    assert main([str(a) for a in argv]) == 1
    assert not run.exists()


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_a_16_bit_grey_photo_is_scaled_not_saturated(tmp_path, mode):
    grey16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / ("grey.png" if mode == "I;16" else "grey.tif")  # PNG holds no 32-bit grey
    image = Image.fromarray(grey16) if mode == "I;16" else Image.fromarray(grey16.astype(np.int32), "I")
    image.save(path)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    expected = np.round(grey16 / 257.0).astype(np.uint8)
    assert np.array_equal(rgb[..., 0], expected) and np.array_equal(rgb[..., 2], expected)
    assert rgb.min() == 0 and rgb.max() == 255 and 120 <= rgb.mean() <= 135
