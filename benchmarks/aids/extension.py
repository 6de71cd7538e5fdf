"""The aids' C++ library (``csrc/``), built on first use by s3d_fast's build
machinery into the same cache, and loaded as ``torch.ops.s3d_fast_aids``.

It holds what only tests and benchmarks need, so the shipped extension does not:
the CUDA launcher's tri-plane backward run on the CPU, and the random-gather probe.
"""

from __future__ import annotations

import os
import threading

import torch

from s3d_fast._ext import build

NAME = "s3d_fast_aids"
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")

_lock = threading.Lock()
_loaded: list = []


def load():
    """Build (first time only) and load the aids library; return ``torch.ops.s3d_fast_aids``."""
    with _lock:
        if not _loaded:
            # The aids reuse the extension's tensor-to-kernel glue (csrc/torch/*_args.h).
            plan = build.side_plan(NAME, CSRC, include_dirs=[os.path.join(build.source_root(), "torch")])
            library, _ = build.ensure_built(plan)
            torch.ops.load_library(library)
            _loaded.append(getattr(torch.ops, NAME))
    return _loaded[0]


def random_gather_rate_probe(table: torch.Tensor, n: int) -> float:
    """``n`` random 8-byte gathers from a (entries, 2) float32 CPU table: the
    memory roofline of the hash-grid encoding. Returns a checksum."""
    return load().random_gather(table, int(n))
