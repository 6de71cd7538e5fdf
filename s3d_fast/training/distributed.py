"""Process-group plumbing for DistributedDataParallel training under ``torchrun``.

``torchrun`` (``python -m torch.distributed.run``) starts K processes and tells each who it
is through environment variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT). :func:`init_distributed` reads them; without them it returns a
single-process context, so one training loop serves both cases. NCCL is used when the
processes drive GPUs, gloo on CPUs.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import zlib
from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch
import torch.distributed as dist

from ..errors import S3DError, Terminated

__all__ = [
    "DistContext",
    "DistributedError",
    "init_distributed",
    "all_reduce_mean",
    "barrier",
    "cleanup",
    "seed_everything",
    "launch_with_torchrun",
    "threads_per_process",
    "unwrap_model",
]


class DistributedError(S3DError):
    """A distributed launch or setup the user asked for cannot happen here."""


@dataclasses.dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool
    backend: Optional[str]  # None when single-process (no process group)

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"environment variable {name}={value!r} is not an integer") from None


def usable_cpus() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_process(nproc: int, cpus: Optional[int] = None) -> int:
    """Intra-op threads for each of ``nproc`` processes sharing ``cpus`` cores."""
    return max(1, (usable_cpus() if cpus is None else cpus) // max(1, nproc))


def init_distributed(device_pref: str = "auto") -> DistContext:
    """Join the torchrun process group (or not, when run as a single process).

    ``device_pref``: ``"auto"`` (CUDA when available, else CPU), ``"cuda"`` or ``"cpu"``.
    Under torchrun each process takes ``cuda:LOCAL_RANK`` (NCCL) or the CPU (gloo) and
    sets its intra-op threads to its share of the cores.
    """
    if device_pref not in ("auto", "cuda", "cpu"):
        raise DistributedError(f"device must be auto, cuda or cpu, got {device_pref!r}")
    if device_pref == "cuda" and not torch.cuda.is_available():
        raise DistributedError("device cuda was asked for, but CUDA is not available here (use --device cpu)")
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())

    world_size = _env_int("WORLD_SIZE")
    if world_size is None or (world_size == 1 and _env_int("RANK") in (None, 0) and "MASTER_ADDR" not in os.environ):
        device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        return DistContext(rank=0, world_size=1, local_rank=0, device=device, is_main=True, backend=None)

    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK")
    if rank is None or local_rank is None:
        raise DistributedError(
            "WORLD_SIZE is set but RANK / LOCAL_RANK are not: launch with torchrun (or s3d-fast train --nproc K)"
        )
    local_world = _env_int("LOCAL_WORLD_SIZE") or world_size
    if use_cuda:
        n_gpus = torch.cuda.device_count()
        if local_rank >= n_gpus:
            raise DistributedError(
                f"process {local_rank} of {local_world} on this node needs "
                f"GPU {local_rank}, but only {n_gpus} are visible: use "
                f"--nproc {n_gpus} or fewer"
            )
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    # torchrun sets OMP_NUM_THREADS=1 unless told otherwise; launch_with_torchrun tells it
    # the fair share. Follow whatever the environment says, else take the share here.
    threads = _env_int("OMP_NUM_THREADS") or threads_per_process(local_world)
    torch.set_num_threads(threads)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistContext(
        rank=rank, world_size=world_size, local_rank=local_rank, device=device, is_main=rank == 0, backend=backend
    )


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_mean(value: Union[torch.Tensor, Mapping[str, float]]) -> Union[torch.Tensor, dict[str, float]]:
    """Mean over all processes of a tensor (returns a new tensor) or of a dict of floats
    (one collective for the whole dict; returns floats). Identity when single-process."""
    if isinstance(value, torch.Tensor):
        if not _active():
            return value.detach().clone()
        out = value.detach().clone()
        if not out.is_floating_point():
            out = out.double()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / dist.get_world_size()
    if isinstance(value, Mapping):
        keys = list(value)
        if not _active():
            return {k: float(value[k]) for k in keys}
        world = dist.get_world_size()
        device = (
            torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        )
        # One collective for the whole dict. The last slot carries a checksum of the key
        # list: ranks packing different keys would otherwise average unrelated numbers.
        tag = float(zlib.crc32("\0".join(keys).encode()))
        packed = torch.tensor([float(value[k]) for k in keys] + [tag], dtype=torch.float64, device=device)
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        values = packed.tolist()
        if values[-1] != tag * world:
            raise DistributedError(
                f"all_reduce_mean: ranks passed different metric names (this rank: {', '.join(keys)})"
            )
        return {k: v / world for k, v in zip(keys, values[:-1])}
    raise TypeError(f"all_reduce_mean expects a tensor or a dict of floats, got {type(value).__name__}")


def barrier() -> None:
    """Wait for every process; no-op when single-process."""
    if _active():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every process when it is true on any (a decision all must take together,
    such as stopping at a step). The flag itself when single-process."""
    if not _active():
        return bool(flag)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    packed = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)
    return bool(packed.item() > 0)


def cleanup(synchronize: bool = False) -> None:
    """Leave the process group (safe to call when none was joined). ``synchronize``: wait
    for every process first, so none tears down its connections while another is still
    finishing (writing the curves, say): a gloo rank that left early was seen to abort
    with "terminate called without an active exception". Only on a normal finish; after
    an error, the others may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            barrier()
        dist.destroy_process_group()


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed Python, numpy and torch (CPU and CUDA) with a per-rank seed derived from
    ``(seed, rank)``: ranks draw different data, runs with the same seed repeat.
    (DDP broadcasts rank 0's initial weights, so differing model inits do not matter.)
    Returns the derived seed."""
    derived = int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)  # also seeds every CUDA device
    return derived


def unwrap_model(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP / DataParallel wrapper (for saving its state_dict)."""
    while isinstance(module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        module = module.module
    return module


def launch_with_torchrun(
    nproc: int,
    module: str,
    argv: Sequence[str],
    *,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Union[str, os.PathLike]] = None,
) -> int:
    """Run ``python -m torch.distributed.run --standalone --nproc_per_node K -m MODULE
    ARGV...`` and return its exit code (non-zero when any process failed).

    Each child gets ``OMP_NUM_THREADS`` = its share of the cores (max(1, C // K)) unless
    the caller's environment already sets it.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise DistributedError(f"--nproc must be a positive integer, got {nproc!r}")
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("OMP_NUM_THREADS", str(threads_per_process(nproc)))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        module,
        *[str(a) for a in argv],
    ]
    proc = subprocess.Popen(cmd, env=child_env, cwd=cwd)
    try:
        return proc.wait()
    except KeyboardInterrupt as exc:
        # Ctrl-C reached torchrun too (same process group); it forwards it to the workers
        # (which write their exit checkpoint). Wait for them rather than orphan them.
        # SIGTERM reached this process alone: pass it on, torchrun forwards it likewise.
        if isinstance(exc, Terminated):
            proc.terminate()
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
