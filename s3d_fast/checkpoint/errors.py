"""Checkpoint problems, each a one-line message for the user."""

from __future__ import annotations

from ..errors import S3DError


class CheckpointError(S3DError):
    """Base of every checkpoint problem; the message is one line for the user."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The path, or a file a checkpoint needs, does not exist."""


class CheckpointFormatError(CheckpointError):
    """Not an s3d-fast checkpoint, or one of a format this version cannot read."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint file exists but cannot be read (truncated, edited, mixed up)."""


class StateDictMismatchError(CheckpointError):
    """A state dict's keys or shapes do not fit the module it is loaded into."""
