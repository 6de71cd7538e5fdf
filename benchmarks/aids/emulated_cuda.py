"""The CUDA launchers (``csrc/cuda/*.cu``) compiled as host C++ over an emulated CUDA
runtime (``emulated_cuda/cuda_runtime.h``), loaded as ``torch.ops.s3d_fast_emulated_cuda``.

Its ops have the schemas of ``torch.ops.s3d_fast``'s and take CPU tensors; every kernel
runs over its real launch geometry, blocks and the threads of a block in a random order
fixed by ``set_launch_seed``. A test build, built on first use like the aids and never
shipped (docs/kernels/emulated-cuda.md).
"""

from __future__ import annotations

import contextlib
import os
import threading

import torch

from s3d_fast import _ext
from s3d_fast._ext import build

NAME = "s3d_fast_emulated_cuda"
CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulated_cuda")

_lock = threading.Lock()
_loaded: list = []


def plan():
    """The build: this folder's .cpp files, which #include the .cu files and the CUDA
    bindings (torch/cuda/*_cuda_backend.h) from csrc/."""
    return build.side_plan(NAME, CSRC, include_dirs=[CSRC, build.source_root()])


def load():
    """Build (first time only) and load the emulated launchers; return their op namespace."""
    with _lock:
        if not _loaded:
            library, _ = build.ensure_built(plan())
            torch.ops.load_library(library)
            _loaded.append(getattr(torch.ops, NAME))
    return _loaded[0]


def counts() -> dict:
    """Kernels launched, float atomicAdds and integer atomics since the library loaded."""
    launches, float_atomics, integer_atomics = load().counts()
    return {"launches": launches, "float_atomic_adds": float_atomics, "integer_atomics": integer_atomics}


@contextlib.contextmanager
def ops_on_emulated_cuda(seed: int = 0):
    """Within the block, ``s3d_fast.ops`` run their CPU tensors through the emulated CUDA
    launchers (the ops reach their kernels through ``s3d_fast._ext.load()``), launched in
    the order ``seed`` gives."""
    emulated = load()
    emulated.set_launch_seed(seed)
    original = _ext.load
    _ext.load = lambda: emulated
    try:
        yield emulated
    finally:
        _ext.load = original
