"""What an evaluation needs before it renders: the model, the clips, the device and the
lip-sync expert, each checked with one clear error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..checkpoint import RunDirectory, resolve_checkpoint
from ..data.dataset import load_manifest
from ..errors import S3DError
from ..metrics import identity
from ..model import load_model, load_syncnet


@dataclass
class Setup:
    model: object
    checkpoint: Path
    run_dir: Path
    manifest: object
    clips: list[dict]
    device: object
    syncnet: Optional[object]
    identity: bool = False  # dlib's identity metric is installed and asked for
    notes: list[str] = field(default_factory=list)


def resolve_device(name: str):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise S3DError("--device cuda: no CUDA device is available")
    return torch.device(name)


def run_dir_of(checkpoint: Path) -> Path:
    """RUN for RUN/checkpoints/step_N; the checkpoint's parent otherwise."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def load_setup(args) -> Setup:
    for name in ("clips", "frames", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise S3DError(f"--{name} must be at least 1, got {value}")
    if args.frames is not None and args.frames < 5:
        raise S3DError(f"--frames must be at least 5 (the lip-sync expert sees 5-frame windows), got {args.frames}")
    ckpt_path = Path(args.checkpoint)
    if not ckpt_path.exists():
        raise S3DError(f"--checkpoint {ckpt_path}: no such run or checkpoint folder")
    manifest = load_manifest(args.data)  # ManifestError (one line) when absent or malformed
    clips = sorted(manifest.clips_in(args.split), key=lambda c: c["id"])
    if not clips:
        raise S3DError(f"{manifest.root}: no clips in split {args.split!r}")
    clips = clips[: args.clips] if args.clips else clips
    device = resolve_device(args.device)
    ckpt = resolve_checkpoint(ckpt_path)
    model = load_model(ckpt, device)
    R = model.cfg.input_resolution
    if manifest.resolution != R:
        raise S3DError(
            f"{manifest.root}: frames are {manifest.resolution}^2 but the checkpoint takes {R}^2 source images"
        )
    run = run_dir_of(ckpt)
    setup = Setup(model, ckpt, run, manifest, clips, device, None)
    if getattr(args, "identity", True):
        missing = identity.unavailable()
        setup.identity = missing is None
        if missing:
            setup.notes.append(f"identity scores skipped: {missing}")
    sync_path = Path(args.syncnet) if args.syncnet else RunDirectory(run).syncnet_path
    if sync_path.is_file():
        try:
            setup.syncnet = load_syncnet(sync_path).to(device)
        except Exception as exc:  # any unreadable weights file is bad input, said in one line
            raise S3DError(f"{sync_path}: cannot load the lip-sync expert: {exc}") from None
    elif args.syncnet:
        raise S3DError(f"--syncnet {sync_path}: no such file")
    else:
        setup.notes.append(
            f"no lip-sync expert at {sync_path} (a run trained without the sync loss): sync scores skipped"
        )
    return setup
