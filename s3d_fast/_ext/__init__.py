"""Access to the compiled extension: ``load()`` builds it on first use."""

from __future__ import annotations

import threading

import torch

from .build import check_sanitizer_runtime, ensure_built

_lock = threading.Lock()
_state: dict = {}


def load():
    """Build (first time only) and load the extension; return ``torch.ops.s3d_fast``."""
    if "ops" in _state:
        return _state["ops"]
    with _lock:
        if "ops" not in _state:
            library, plan = ensure_built()
            check_sanitizer_runtime(plan)
            torch.ops.load_library(library)
            _state["plan"] = plan
            _state["library"] = library
            _state["ops"] = torch.ops.s3d_fast
    return _state["ops"]


def info() -> dict:
    """What the loaded extension was built with (builds it if needed)."""
    ops = load()
    return {
        "library": _state["library"],
        "backends": list(ops.backends()),
        "reason": _state["plan"].reason,
        "arch_list": _state["plan"].arch_list,
    }
