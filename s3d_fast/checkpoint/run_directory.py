"""A training run's folder: its checkpoints, newest first found, old ones pruned."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from ..atomic import pid_alive
from .errors import CheckpointNotFoundError
from .format import CONFIG_FILE, MODEL_FILE, PathLike, looks_like_checkpoint, read_checkpoint_meta

_STEP_DIR = re.compile(r"^step_(\d+)$")
_TEMP_DIR = re.compile(r"^\.step_\d+\.(tmp|old)-(\d+)-[0-9a-f]+$")


class RunDirectory:
    """A training run's folder: ``RUN/checkpoints/step_00000100`` and friends."""

    def __init__(self, run_dir: PathLike) -> None:
        self.root = Path(run_dir)
        self.checkpoints_dir = self.root / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def curves_path(self) -> Path:
        return self.root / "curves.png"

    @property
    def config_path(self) -> Path:
        """The run's resolved config, written when the run starts."""
        return self.root / "config.json"

    @property
    def syncnet_path(self) -> Path:
        """The lip-sync expert, trained once per run (stage 1)."""
        return self.root / "syncnet.safetensors"

    @property
    def profile_path(self) -> Path:
        return self.root / "profile.txt"

    def checkpoint_path(self, step: int) -> Path:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        return self.checkpoints_dir / f"step_{step:08d}"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first; temp and half-written ones are ignored."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for entry in self.checkpoints_dir.iterdir():
            m = _STEP_DIR.match(entry.name)
            if m and entry.is_dir() and (entry / CONFIG_FILE).is_file() and (entry / MODEL_FILE).is_file():
                found.append((int(m.group(1)), entry))
        return sorted(found)

    def latest(self) -> Optional[Path]:
        """The newest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def prune(self, keep: int = 3, keep_steps: Iterable[int] = ()) -> list[Path]:
        """Delete all but the ``keep`` newest checkpoints and those at ``keep_steps``, and
        temp directories left by writers that are no longer running (a checkpoint left
        aside by a writer that died mid-replace is put back instead). Returns what was
        removed."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive int, got {keep!r}")
        kept = set(keep_steps)
        removed = []
        for step, path in self.checkpoints()[:-keep]:
            if step in kept:
                continue
            shutil.rmtree(path)
            removed.append(path)
        if self.checkpoints_dir.is_dir():
            for entry in sorted(self.checkpoints_dir.iterdir()):
                m = _TEMP_DIR.match(entry.name)
                if not m or pid_alive(int(m.group(2))):
                    continue
                home = self.checkpoints_dir / entry.name[1:].split(".", 1)[0]
                if m.group(1) == "old" and not home.exists() and looks_like_checkpoint(entry):
                    # A writer died between moving the old checkpoint aside and moving the
                    # new one in: the old one is the only copy, so put it back.
                    os.rename(entry, home)
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed


def resolve_checkpoint(path: PathLike) -> Path:
    """A checkpoint directory, or a run directory's newest complete checkpoint
    (``s3d-fast eval --checkpoint RUN`` accepts either)."""
    root = Path(path)
    # A run folder holds its own config.json (the run's config) beside checkpoints/.
    if root.is_dir() and (not (root / CONFIG_FILE).exists() or (root / "checkpoints").is_dir()):
        run = RunDirectory(root)
        latest = run.latest()
        if latest is not None:
            return latest
        if run.checkpoints_dir.is_dir():
            raise CheckpointNotFoundError(f"run {root} has no complete checkpoint yet")
    read_checkpoint_meta(root)  # raises the precise error
    return root
