"""Where rendering's time goes: per-stage seconds, summed over frames."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch


@dataclass
class RenderStats:
    """Where the time went. ``render_seconds`` covers rendering alone (the model's
    per-frame work plus conversion to uint8), not audio, baking, encoding or disk."""

    frames: int = 0
    render_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=OrderedDict)
    setup: dict[str, float] = field(default_factory=OrderedDict)  # once per render / identity

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.render_seconds if self.render_seconds > 0 else float("nan")

    def add_stage(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + float(seconds)

    def add(self, other: RenderStats) -> None:
        """Counts in the frames, time and stages of ``other`` (setup is not added)."""
        self.frames += other.frames
        self.render_seconds += other.render_seconds
        for name, sec in other.stages.items():
            self.add_stage(name, sec)

    def summary(self) -> str:
        lines = [
            f"rendering alone: {self.frames_per_second:.2f} frames/s "
            f"({self.frames} frames in {self.render_seconds:.2f} s)"
        ]
        if self.frames:
            lines.append("per frame, by stage:")
            for name, sec in self.stages.items():
                share = 100.0 * sec / self.render_seconds if self.render_seconds > 0 else 0.0
                lines.append(f"  {name:<18} {1000.0 * sec / self.frames:8.2f} ms  {share:5.1f} %")
        if self.setup:
            lines.append("once: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.setup.items()))
        return "\n".join(lines)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it times that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
