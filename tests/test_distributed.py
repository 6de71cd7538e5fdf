"""DDP plumbing: single-process fallbacks, and 2 gloo processes under torchrun on the CPU."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from s3d_fast.training.distributed import (
    DistContext,
    DistributedError,
    all_reduce_mean,
    any_rank,
    barrier,
    cleanup,
    init_distributed,
    launch_with_torchrun,
    seed_everything,
    threads_per_process,
    unwrap_model,
)

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun_env(monkeypatch):
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)


def _child_env():
    env = dict(os.environ)
    for name in TORCHRUN_VARS + ("OMP_NUM_THREADS",):
        env.pop(name, None)
    # The worker module lives in tests/ (not a package); s3d_fast in the repo root.
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_two_gloo_processes_train_identical_replicas(tmp_path):
    rc = launch_with_torchrun(2, "_ddp_worker", ["--out", str(tmp_path), "--steps", "20"], env=_child_env())
    assert rc == 0
    w0 = load_file(str(tmp_path / "rank0.safetensors"))
    w1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert set(w0) == set(w1) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k  # bit-identical replicas
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [lg["rank"] for lg in logs] == [0, 1]
    assert all(lg["world_size"] == 2 and lg["backend"] == "gloo" for lg in logs)
    assert [lg["is_main"] for lg in logs] == [True, False]
    # all_reduce_mean gave every rank the same averaged loss, and it fell.
    assert logs[0]["losses"] == logs[1]["losses"]
    losses = logs[0]["losses"]
    assert len(losses) == 20 and losses[-1] < 0.5 * losses[0]
    # One rank's flag is every rank's (the stop-on-the-clock decision); none is none.
    assert [lg["any_rank"] for lg in logs] == [[True, False], [True, False]]
    # Each child got its share of the cores.
    share = threads_per_process(2)
    assert all(lg["threads"] == share and lg["omp"] == str(share) for lg in logs)


def test_launch_forwards_a_failing_exit_code(tmp_path):
    rc = launch_with_torchrun(1, "_ddp_worker", ["--out", str(tmp_path), "--fail-rank", "0"], env=_child_env())
    assert rc != 0


def test_launch_rejects_bad_nproc():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DistributedError, match="--nproc must be a positive integer"):
            launch_with_torchrun(bad, "x", [])


def test_single_process_context(no_torchrun_env):
    ctx = init_distributed("cpu")
    assert ctx == DistContext(
        rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True, backend=None
    )
    assert not ctx.distributed
    auto = init_distributed("auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    t = torch.tensor([1.0, 3.0])
    out = all_reduce_mean(t)
    assert torch.equal(out, t) and out is not t
    assert all_reduce_mean({"a": torch.tensor(2.0), "b": 3}) == {"a": 2.0, "b": 3.0}
    assert any_rank(True) is True and any_rank(False) is False
    barrier()
    cleanup(synchronize=True)
    with pytest.raises(TypeError):
        all_reduce_mean([1.0])


def test_init_errors(no_torchrun_env, monkeypatch):
    with pytest.raises(DistributedError, match="device must be auto, cuda or cpu"):
        init_distributed("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DistributedError, match="CUDA is not available"):
            init_distributed("cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="RANK / LOCAL_RANK are not"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedError, match="WORLD_SIZE='two' is not an integer"):
        init_distributed("cpu")


def test_seed_everything():
    s0 = seed_everything(123, 0)
    a = (torch.rand(2), np.random.rand(), random.random())
    assert seed_everything(123, 0) == s0
    b = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert seed_everything(123, 1) != s0 and seed_everything(124, 0) != s0


def test_threads_and_unwrap():
    assert threads_per_process(2, cpus=2) == 1
    assert threads_per_process(3, cpus=2) == 1
    assert threads_per_process(2, cpus=16) == 8
    assert threads_per_process(1) >= 1
    inner = torch.nn.Linear(2, 2)
    assert unwrap_model(torch.nn.DataParallel(inner)) is inner
    assert unwrap_model(inner) is inner
