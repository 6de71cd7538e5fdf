"""Checkpoints: a folder of safetensors + JSON per step, written atomically, no pickle."""

from .errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    StateDictMismatchError,
)
from .format import FORMAT_VERSION, Checkpoint, load_checkpoint, read_checkpoint_meta, save_checkpoint
from .rng import capture_rng, restore_rng
from .run_directory import RunDirectory, resolve_checkpoint
from .weights import load_model_state

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointFormatError",
    "CheckpointCorruptError",
    "StateDictMismatchError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "restore_rng",
    "capture_rng",
    "load_model_state",
    "RunDirectory",
    "resolve_checkpoint",
    "read_checkpoint_meta",
]
