"""Deterministic mode of a training process (``train.deterministic``, ``--deterministic``)."""

from __future__ import annotations

import os

import torch

# cuBLAS is deterministic only with a fixed workspace, which it reads when CUDA starts.
CUBLAS_WORKSPACE = ":4096:8"


def use_deterministic_algorithms(on: bool) -> None:
    """When ``on``: ``torch.use_deterministic_algorithms(True)`` for this process, and
    ``CUBLAS_WORKSPACE_CONFIG`` when unset (PyTorch refuses cuBLAS calls without it in
    that mode). Call before CUDA is initialised. Off leaves the process's own setting alone."""
    if not on:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
