"""Render threads that each keep to one core: a session renders several frames at once, one
per thread, rather than one frame on all cores. Frames of one at a time are too small for
torch's intra-op threads to share well, and those threads wait on each other at every
operation, which on a machine shared with the encoder (and other work) costs more than they
gain. Torch's thread count is process-wide, so it is lowered here in the calling thread
only, through OpenMP's per-thread setting."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import torch

RENDER_WORKERS = max(1, min(2, os.cpu_count() or 1))  # frames rendered at once


@functools.lru_cache(maxsize=1)
def _openmp() -> Optional[ctypes.CDLL]:
    """The OpenMP runtime torch has loaded (the same library object, so its settings are torch's)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line or "libiomp" in line}
    except OSError:  # not Linux: the workers keep torch's thread count
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def one_thread() -> None:
    """Torch's operations in the calling thread run on it alone (other threads keep theirs)."""
    torch.get_num_threads()  # torch sets a thread's count on its first use; set after, it stays
    _set_own_threads(1)


@contextlib.contextmanager
def threads_of_this_thread(n: int):
    """Torch's operations in the calling thread run on ``n`` threads inside the block (other
    threads keep theirs); gives the count it had, which it has again after."""
    had = torch.get_num_threads()  # the calling thread's own count (OpenMP's, per thread)
    _set_own_threads(n)
    try:
        yield had
    finally:
        _set_own_threads(had)


def _set_own_threads(n: int) -> None:
    """OpenMP's thread count for the calling thread only (none found: unchanged)."""
    runtime = _openmp()
    if runtime is not None:
        runtime.omp_set_num_threads(n)


@functools.lru_cache(maxsize=1)
def render_pool() -> ThreadPoolExecutor:
    """The server's render threads, one per core (up to ``RENDER_WORKERS``), shared by its
    sessions: more would only take turns on the same cores."""
    return ThreadPoolExecutor(max_workers=RENDER_WORKERS, thread_name_prefix="render-frame", initializer=one_thread)
