"""Generator checkpoints: build the model a checkpoint describes and load its weights."""

from __future__ import annotations

from ..checkpoint import CheckpointFormatError, load_checkpoint, load_model_state, resolve_checkpoint
from ..config import load_config
from .s3d import S3DNeRF

GENERATOR_KIND = "generator"  # a checkpoint's extra["kind"]: what it holds


def load_model(path, device="cpu") -> S3DNeRF:
    """A trained generator in eval mode; ``path`` is a checkpoint folder or a run folder
    (its newest checkpoint). ``model.config`` holds the whole run config."""
    ckpt = load_checkpoint(resolve_checkpoint(path), map_location=device)
    kind = ckpt.extra.get("kind")
    if kind != GENERATOR_KIND:
        raise CheckpointFormatError(f"{ckpt.path}: holds a {kind or 'unknown'} model, not an s3d-fast generator")
    bad = sorted(name for name, t in ckpt.model_state.items() if t.is_floating_point() and not bool(t.isfinite().all()))
    if bad:  # a diverged run's weights render a black or NaN video without a word: refuse them
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointFormatError(f"{ckpt.path}: weights hold NaN or infinite values ({', '.join(bad[:3])}{more})")
    cfg = load_config(ckpt.config)
    model = S3DNeRF(cfg.model).to(device)
    load_model_state(model, ckpt.model_state)
    model.config = cfg
    model.checkpoint_step = ckpt.step
    return model.eval()
