"""Bounds on the render arguments that batch and streamed rendering share."""

from __future__ import annotations

from typing import Optional

from .errors import RenderError

MIN_SIZE, MAX_SIZE = 64, 1024
MAX_BATCH = 64  # frames rendered together: each holds ~8.5 MB at 256^2


def check_size(size) -> Optional[int]:
    """The output size in pixels (even, MIN_SIZE to MAX_SIZE), or None for the model's own."""
    if size is None:
        return None
    if int(size) != size or not MIN_SIZE <= int(size) <= MAX_SIZE or int(size) % 2:
        raise RenderError(f"--size must be an even number of pixels in [{MIN_SIZE}, {MAX_SIZE}], got {size}")
    return int(size)


def _is_whole(value) -> bool:
    """An integer value (3 or 3.0), not NaN, inf or a string."""
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False


def check_batch(batch, name: str = "batch") -> int:
    """Frames rendered together: an integer from 1 to MAX_BATCH. ``name`` is what the error
    calls it (the CLIs pass their flag)."""
    if not _is_whole(batch) or not 1 <= batch <= MAX_BATCH:
        raise RenderError(f"{name} must be an integer from 1 to {MAX_BATCH}, got {batch}")
    return int(batch)


def check_adapt_steps(steps, name: str = "adapt_steps") -> int:
    """Bake-time adaptation steps: 0 (none) or more. ``name`` as for :func:`check_batch`."""
    if not _is_whole(steps) or steps < 0:
        raise RenderError(f"{name} must be 0 or more, got {steps}")
    return int(steps)
