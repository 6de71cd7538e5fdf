"""Where a training step's time goes: wall time per stage of the loop, and, on request,
the share of each model stage from torch.profiler."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from torch.profiler import ProfilerActivity, profile

from .. import atomic

# The model's named stages (torch.profiler.record_function regions), in data-flow order.
STAGES = (
    "appearance encoder",
    "slot attention",
    "audio encoder",
    "cross-attention",
    "coarse pass (no grad)",
    "deformation",
    "tri-planes + decoder",
    "compositing",
    "super-resolution",
)


def wall_time_report(timers: dict[str, float]) -> str:
    total = sum(timers.values()) or 1.0
    lines = ["share of generator wall time by stage (this process):"]
    for name, secs in sorted(timers.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<10} {secs:9.1f} s  {100 * secs / total:5.1f} %")
    return "\n".join(lines) + "\n"


def model_stage_report(step_once: Callable[[int], None], n: int) -> str:
    """Profile ``n`` calls ``step_once(i)`` (one forward+backward each) and report the
    inclusive CPU time of each model stage as a share of the whole step."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for i in range(n):
            step_once(i)
        wall = time.perf_counter() - start
    rows = {event.key: event.cpu_time_total / 1e6 for event in prof.key_averages() if event.key in STAGES}
    lines = [
        f"\nforward stages over {n} profiled steps (inclusive CPU time, % of the whole step; "
        f"backward and the rest make up the remainder):"
    ]
    for name in STAGES:
        if name in rows:
            lines.append(f"  {name:<24} {rows[name] / n * 1000:8.1f} ms/step  {100 * rows[name] / wall:5.1f} %")
    lines.append(f"  {'whole step':<24} {wall / n * 1000:8.1f} ms/step")
    return "\n".join(lines) + "\n"


def write_report(path: Path, text: str, append: bool = False) -> None:
    before = path.read_text() if append and path.exists() else ""
    atomic.write_text(path, before + text)
