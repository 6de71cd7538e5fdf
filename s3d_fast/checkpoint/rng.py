"""The random number generators' states, saved with a checkpoint for a bit-exact resume."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from .errors import CheckpointCorruptError, CheckpointError


def capture_rng() -> dict[str, Any]:
    """The process's torch (CPU + initialised CUDA), numpy-global and ``random`` states."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(ckpt: Any) -> None:
    """Put back the RNG states saved with a checkpoint: ``ckpt`` is a loaded
    :class:`~s3d_fast.checkpoint.format.Checkpoint` (load it ``with_training=True``) or
    its ``rng`` dict.

    CUDA states are restored for as many devices as both the checkpoint and this machine
    have; a checkpoint from a CPU run leaves the CUDA generators alone.
    """
    state = ckpt.rng if hasattr(ckpt, "rng") else ckpt
    if state is None:
        where = f" {ckpt.path}" if hasattr(ckpt, "path") else ""
        raise CheckpointError(
            f"checkpoint{where} has no RNG state (load it with with_training=True; it must be saved with rng=True)"
        )
    try:
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        random.setstate(state["python"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointCorruptError(f"checkpoint RNG state is malformed: {exc}") from None
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        n = min(len(cuda_states), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda_states[i], device=i)
