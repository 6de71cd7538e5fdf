"""The checkpoint format: a folder of safetensors + JSON, written atomically, no pickle.

Layout of one checkpoint folder::

    model.safetensors     the model's state_dict
    config.json           {"format": "s3d-fast-checkpoint", "format_version": 1,
                           "config": {...}, "step": N, "created": ISO-8601,
                           "s3d_fast_version": "...", "has_training_state": bool,
                           "extra": {...}}
    training.safetensors  (optional) every tensor of the optimizer / scheduler / RNG states
    training.json         (optional) the rest of those states, tensors replaced by
                          references into training.safetensors (``state_tree``)

A checkpoint is written into a hidden temporary sibling folder and moved into place
(``s3d_fast.atomic``), so a reader (or a crash) never sees half of one; ``config.json``
is written last inside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import atomic
from ..version import __version__
from .errors import CheckpointCorruptError, CheckpointError, CheckpointFormatError, CheckpointNotFoundError
from .rng import capture_rng
from .state_tree import Decoder, Encoder
from .tensors import storable

FORMAT_VERSION = 1
FORMAT_NAME = "s3d-fast-checkpoint"
TRAINING_FORMAT_NAME = "s3d-fast-training-state"

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAINING_TENSORS_FILE = "training.safetensors"
TRAINING_JSON_FILE = "training.json"

PathLike = Union[str, os.PathLike]


@dataclasses.dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read. Training fields are None unless asked for."""

    path: Path
    config: dict[str, Any]
    step: int
    extra: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizers: Optional[dict[str, dict[str, Any]]] = None
    schedulers: Optional[dict[str, dict[str, Any]]] = None
    rng: Optional[dict[str, Any]] = None
    format_version: int = FORMAT_VERSION
    created: Optional[str] = None
    s3d_fast_version: Optional[str] = None
    has_training_state: bool = False


def save_checkpoint(
    path: PathLike,
    *,
    model_state: dict[str, torch.Tensor],
    config: dict[str, Any],
    step: int,
    extra: Optional[dict[str, Any]] = None,
    optimizers: Optional[dict[str, dict[str, Any]]] = None,
    schedulers: Optional[dict[str, dict[str, Any]]] = None,
    rng: bool = True,
) -> Path:
    """Write a checkpoint directory at ``path`` atomically and return its path.

    ``optimizers`` / ``schedulers`` map a name to a ``state_dict()`` (not the object).
    With ``rng`` the torch (CPU and initialised CUDA devices), numpy-global and Python
    ``random`` states are saved so that :func:`restore_rng` resumes bit for bit. The
    training files are written when any of optimizers, schedulers or rng is given.
    An existing checkpoint at ``path`` is replaced; an existing directory that is not a
    checkpoint is never touched.
    """
    target = Path(path)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint step must be a non-negative int, got {step!r}")
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint config must be a dict (use config_to_dict), got {type(config).__name__}")
    if target.exists():
        if not target.is_dir():
            raise CheckpointError(f"cannot write checkpoint {target}: a file is in the way")
        if not looks_like_checkpoint(target):
            raise CheckpointError(f"refusing to replace {target}: it exists and is not an s3d-fast checkpoint")
    tensors = _model_tensors(model_state)
    has_training = bool(optimizers) or bool(schedulers) or rng
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "step": step,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "s3d_fast_version": __version__,
        "has_training_state": has_training,
        "config": config,
        "extra": {} if extra is None else extra,
    }
    meta_text = _dumps(meta, "checkpoint config/extra")
    training_text = None
    training_tensors: dict[str, torch.Tensor] = {}
    if has_training:
        encoder = Encoder()
        training = {
            "format": TRAINING_FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "step": step,
            "optimizers": encoder.encode(optimizers or {}, "optimizers"),
            "schedulers": encoder.encode(schedulers or {}, "schedulers"),
            "rng": encoder.encode(capture_rng(), "rng") if rng else None,
        }
        training_text = _dumps(training, "optimizer/scheduler state")
        training_tensors = encoder.tensors

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_directory(target, durable=True) as tmp:
        save_file(tensors, str(tmp / MODEL_FILE), metadata={"format": FORMAT_NAME})
        if training_text is not None:
            save_file(training_tensors, str(tmp / TRAINING_TENSORS_FILE), metadata={"format": TRAINING_FORMAT_NAME})
            _write_text(tmp / TRAINING_JSON_FILE, training_text)
        _write_text(tmp / CONFIG_FILE, meta_text)  # last: its presence marks completeness
    return target


def _model_tensors(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if not isinstance(model_state, dict):
        raise CheckpointError(f"model_state must be a state_dict (dict of tensors), got {type(model_state).__name__}")
    out: dict[str, torch.Tensor] = {}
    seen_storage = set()
    for key, value in model_state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"model_state key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"model_state['{key}'] is a {type(value).__name__}, not a tensor (safetensors holds tensors only)"
            )
        out[key] = storable(value, seen_storage)
    return out


def _dumps(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not JSON-serialisable: {exc}") from None


def _write_text(path: Path, text: str) -> None:
    """One file inside the temporary checkpoint folder (the folder is what moves atomically)."""
    path.write_text(text + "\n", encoding="utf-8")


def load_checkpoint(
    path: PathLike, map_location: Union[str, torch.device] = "cpu", with_training: bool = False
) -> Checkpoint:
    """Read a checkpoint directory. ``map_location`` places the model tensors; the
    training state is always read on the CPU (``Optimizer.load_state_dict`` moves its
    tensors to the parameters' device, and RNG states must be CPU tensors)."""
    root = Path(path)
    device = _device(map_location)
    meta = read_checkpoint_meta(root)
    model_state = _load_tensors(root / MODEL_FILE, device)
    ckpt = Checkpoint(
        path=root,
        config=meta["config"],
        step=meta["step"],
        extra=meta.get("extra") or {},
        model_state=model_state,
        format_version=meta["format_version"],
        created=meta.get("created"),
        s3d_fast_version=meta.get("s3d_fast_version"),
        has_training_state=bool(meta.get("has_training_state")),
    )
    if with_training:
        if not ckpt.has_training_state:
            raise CheckpointError(
                f"checkpoint {root} holds no training state (it was saved "
                f"without optimizer/RNG state): it cannot be resumed"
            )
        training = _read_json(root / TRAINING_JSON_FILE)
        if training.get("format") != TRAINING_FORMAT_NAME:
            raise CheckpointCorruptError(f"{root / TRAINING_JSON_FILE} is not an s3d-fast training state")
        _check_version(training.get("format_version"), root / TRAINING_JSON_FILE)
        if training.get("step") != ckpt.step:
            raise CheckpointCorruptError(
                f"checkpoint {root} is inconsistent: training state of step "
                f"{training.get('step')} beside weights of step {ckpt.step}"
            )
        tensors = _load_tensors(root / TRAINING_TENSORS_FILE, torch.device("cpu"))
        decoder = Decoder(tensors, root / TRAINING_JSON_FILE)
        ckpt.optimizers = decoder.decode(training.get("optimizers", {}))
        ckpt.schedulers = decoder.decode(training.get("schedulers", {}))
        ckpt.rng = decoder.decode(training.get("rng"))
    return ckpt


def read_checkpoint_meta(path: PathLike) -> dict[str, Any]:
    """The checked contents of ``config.json`` (cheap: no tensors are read)."""
    root = Path(path)
    if not root.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {root}")
    if not root.is_dir():
        raise CheckpointFormatError(
            f"{root} is not a checkpoint directory (a checkpoint is a directory holding {CONFIG_FILE} and {MODEL_FILE})"
        )
    if not (root / CONFIG_FILE).is_file():
        raise CheckpointFormatError(f"{root} is not an s3d-fast checkpoint: no {CONFIG_FILE}")
    meta = _read_json(root / CONFIG_FILE)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointFormatError(
            f"{root} is not an s3d-fast checkpoint ({CONFIG_FILE} "
            f"format is {meta.get('format')!r}, not {FORMAT_NAME!r})"
        )
    _check_version(meta.get("format_version"), root / CONFIG_FILE)
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(meta.get("config"), dict):
        raise CheckpointCorruptError(f"{root / CONFIG_FILE} lacks a valid 'step' or 'config'")
    if not (root / MODEL_FILE).is_file():
        raise CheckpointNotFoundError(f"checkpoint {root} is incomplete: {MODEL_FILE} missing")
    if meta.get("has_training_state"):
        for name in (TRAINING_JSON_FILE, TRAINING_TENSORS_FILE):
            if not (root / name).is_file():
                raise CheckpointNotFoundError(f"checkpoint {root} is incomplete: {name} missing")
    return meta


def _check_version(version: Any, where: Path) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointFormatError(f"{where}: format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise CheckpointFormatError(
            f"checkpoint format {version} is newer than this s3d-fast (reads {FORMAT_VERSION}): upgrade s3d-fast"
        )
    if version < 1:
        raise CheckpointFormatError(
            f"checkpoint format {version} is not one this s3d-fast reads (1 to {FORMAT_VERSION})"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"checkpoint file missing: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointCorruptError(f"cannot read {path}: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointCorruptError(f"{path} is corrupt: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise CheckpointCorruptError(f"{path} is corrupt: nested too deeply to be a checkpoint's JSON") from None
    if not isinstance(obj, dict):
        raise CheckpointCorruptError(f"{path} is corrupt: expected a JSON object")
    return obj


def _load_tensors(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint file missing: {path}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointCorruptError(f"{path} is corrupt: {first}") from None


def _device(map_location: Union[str, torch.device]) -> torch.device:
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError):
        raise CheckpointError(f"map_location {map_location!r} is not a device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"map_location {map_location!r}: CUDA is not available here")
    return device


def looks_like_checkpoint(root: Path) -> bool:
    try:
        meta = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME
