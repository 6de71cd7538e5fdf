"""Checkpoints: a directory of safetensors + JSON, written atomically, no pickle.

Layout of one checkpoint directory::

    model.safetensors     the model's state_dict
    config.json           {"format": "s3d-fast-checkpoint", "format_version": 1,
                           "config": {...}, "step": N, "created": ISO-8601,
                           "s3d_fast_version": "...", "has_training_state": bool,
                           "extra": {...}}
    training.safetensors  (optional) every tensor of the optimizer / scheduler / RNG states
    training.json         (optional) the rest of those states, tensors replaced by
                          references into training.safetensors

A checkpoint is written into a hidden temp sibling directory and renamed into place, so a
reader (or a crash) never sees half of one; ``config.json`` is written last inside it.
Replacing an existing checkpoint swaps the two directories atomically where the OS can
(``renameat2(RENAME_EXCHANGE)`` on Linux) and otherwise renames the old one aside first.
"""
from __future__ import annotations

import ctypes
import dataclasses
import datetime
import errno
import json
import math
import os
import random
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import S3DError

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

FORMAT_VERSION = 1
FORMAT_NAME = "s3d-fast-checkpoint"
TRAINING_FORMAT_NAME = "s3d-fast-training-state"

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAINING_TENSORS_FILE = "training.safetensors"
TRAINING_JSON_FILE = "training.json"

PathLike = Union[str, os.PathLike]


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


@dataclasses.dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read. Training fields are None unless asked for."""

    path: Path
    config: Dict[str, Any]
    step: int
    extra: Dict[str, Any]
    model_state: Dict[str, torch.Tensor]
    optimizers: Optional[Dict[str, Dict[str, Any]]] = None
    schedulers: Optional[Dict[str, Dict[str, Any]]] = None
    rng: Optional[Dict[str, Any]] = None
    format_version: int = FORMAT_VERSION
    created: Optional[str] = None
    s3d_fast_version: Optional[str] = None
    has_training_state: bool = False


# =========================================================================== save


def save_checkpoint(
    path: PathLike,
    *,
    model_state: Dict[str, torch.Tensor],
    config: Dict[str, Any],
    step: int,
    extra: Optional[Dict[str, Any]] = None,
    optimizers: Optional[Dict[str, Dict[str, Any]]] = None,
    schedulers: Optional[Dict[str, Dict[str, Any]]] = None,
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
    from . import __version__

    target = Path(path)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint step must be a non-negative int, got {step!r}")
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint config must be a dict (use config_to_dict), "
                              f"got {type(config).__name__}")
    if target.exists():
        if not target.is_dir():
            raise CheckpointError(f"cannot write checkpoint {target}: a file is in the way")
        if not _looks_like_checkpoint(target):
            raise CheckpointError(f"refusing to replace {target}: it exists and is not an "
                                  f"s3d-fast checkpoint")
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
    training_tensors: Dict[str, torch.Tensor] = {}
    if has_training:
        encoder = _Encoder()
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
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        save_file(tensors, str(tmp / MODEL_FILE), metadata={"format": FORMAT_NAME})
        if training_text is not None:
            save_file(training_tensors, str(tmp / TRAINING_TENSORS_FILE),
                      metadata={"format": TRAINING_FORMAT_NAME})
            _write_text(tmp / TRAINING_JSON_FILE, training_text)
        _write_text(tmp / CONFIG_FILE, meta_text)  # last: its presence marks completeness
        for name in os.listdir(tmp):
            _fsync_file(tmp / name)
        _fsync_dir(tmp)
        _move_into_place(tmp, target)
    except BaseException:  # Ctrl-C included: never leave a temp directory behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    return target


def _model_tensors(model_state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if not isinstance(model_state, dict):
        raise CheckpointError(f"model_state must be a state_dict (dict of tensors), "
                              f"got {type(model_state).__name__}")
    out: Dict[str, torch.Tensor] = {}
    seen_storage = set()
    for key, value in model_state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"model_state key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"model_state['{key}'] is a {type(value).__name__}, not a "
                                  f"tensor (safetensors holds tensors only)")
        out[key] = _storable(value, seen_storage)
    return out


def _storable(t: torch.Tensor, seen_storage: set) -> torch.Tensor:
    """CPU, contiguous, and owning its storage: safetensors refuses shared storage
    (tied weights, views), so a second user of one storage gets its own copy."""
    t = t.detach().cpu().contiguous()
    ptr = t.untyped_storage().data_ptr()
    if ptr in seen_storage or t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.clone()
        ptr = t.untyped_storage().data_ptr()
    if t.numel():
        seen_storage.add(ptr)
    return t


def _dumps(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not JSON-serialisable: {exc}") from None


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # not supported (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old checkpoint
        return
    # Fallback: old aside, new in, old removed. A crash between the two renames leaves the
    # old checkpoint under the hidden ".old-" name, never a half-written one.
    old = target.parent / f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# =========================================================================== load


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu",
                    with_training: bool = False) -> Checkpoint:
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
            raise CheckpointError(f"checkpoint {root} holds no training state (it was saved "
                                  f"without optimizer/RNG state): it cannot be resumed")
        training = _read_json(root / TRAINING_JSON_FILE)
        if training.get("format") != TRAINING_FORMAT_NAME:
            raise CheckpointCorruptError(f"{root / TRAINING_JSON_FILE} is not an s3d-fast "
                                         f"training state")
        _check_version(training.get("format_version"), root / TRAINING_JSON_FILE)
        if training.get("step") != ckpt.step:
            raise CheckpointCorruptError(
                f"checkpoint {root} is inconsistent: training state of step "
                f"{training.get('step')} beside weights of step {ckpt.step}")
        tensors = _load_tensors(root / TRAINING_TENSORS_FILE, torch.device("cpu"))
        decoder = _Decoder(tensors, root / TRAINING_JSON_FILE)
        ckpt.optimizers = decoder.decode(training.get("optimizers", {}))
        ckpt.schedulers = decoder.decode(training.get("schedulers", {}))
        ckpt.rng = decoder.decode(training.get("rng"))
    return ckpt


def read_checkpoint_meta(path: PathLike) -> Dict[str, Any]:
    """The checked contents of ``config.json`` (cheap: no tensors are read)."""
    root = Path(path)
    if not root.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {root}")
    if not root.is_dir():
        raise CheckpointFormatError(f"{root} is not a checkpoint directory (a checkpoint is a "
                                    f"directory holding {CONFIG_FILE} and {MODEL_FILE})")
    if not (root / CONFIG_FILE).is_file():
        raise CheckpointFormatError(f"{root} is not an s3d-fast checkpoint: no {CONFIG_FILE}")
    meta = _read_json(root / CONFIG_FILE)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointFormatError(f"{root} is not an s3d-fast checkpoint ({CONFIG_FILE} "
                                    f"format is {meta.get('format')!r}, not {FORMAT_NAME!r})")
    _check_version(meta.get("format_version"), root / CONFIG_FILE)
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(meta.get("config"),
                                                                              dict):
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
        raise CheckpointFormatError(f"{where}: format_version {version!r} is not a version "
                                    f"number")
    if version > FORMAT_VERSION:
        raise CheckpointFormatError(f"checkpoint format {version} is newer than this s3d-fast "
                                    f"(reads {FORMAT_VERSION}): upgrade s3d-fast")
    if version < 1:
        raise CheckpointFormatError(f"checkpoint format {version} is not one this s3d-fast "
                                    f"reads (1 to {FORMAT_VERSION})")


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"checkpoint file missing: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointCorruptError(f"cannot read {path}: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointCorruptError(f"{path} is corrupt: not valid JSON ({exc.msg} at line "
                                     f"{exc.lineno})") from None
    if not isinstance(obj, dict):
        raise CheckpointCorruptError(f"{path} is corrupt: expected a JSON object")
    return obj


def _load_tensors(path: Path, device: torch.device) -> Dict[str, torch.Tensor]:
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


def _looks_like_checkpoint(root: Path) -> bool:
    try:
        meta = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME


# =========================================================================== state trees
#
# Optimizer and scheduler state dicts are trees of dicts (int keys in "state"), lists,
# tuples ("betas"), numbers (inf in ReduceLROnPlateau), strings and tensors. JSON holds
# all but the tensors, given small tagged objects for what it cannot say directly; the
# tensors go to safetensors under their path in the tree.

_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")


class _Encoder:
    def __init__(self) -> None:
        self.tensors: Dict[str, torch.Tensor] = {}
        self._storage: set = set()

    def encode(self, obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            return {"__tensor__": self._put(path, obj)}
        if isinstance(obj, np.ndarray):
            if obj.dtype == np.uint32:  # torch's uint32 support is thin: widen losslessly
                stored = torch.from_numpy(obj.astype(np.int64))
            else:
                try:
                    stored = torch.from_numpy(np.ascontiguousarray(obj))
                except TypeError:
                    raise CheckpointError(f"cannot save {path}: numpy dtype {obj.dtype} "
                                          f"is not supported") from None
            return {"__ndarray__": self._put(path, stored), "dtype": obj.dtype.str}
        if isinstance(obj, np.generic):
            obj = obj.item()
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            plain = all(isinstance(k, str) and k not in _TAGS for k in obj)
            if plain:
                return {k: self.encode(v, f"{path}/{k}") for k, v in obj.items()}
            return {"__dict__": [[self.encode(k, f"{path}/key{i}"),
                                  self.encode(v, f"{path}/{k}")]
                                 for i, (k, v) in enumerate(obj.items())]}
        raise CheckpointError(f"cannot save {path}: values of type {type(obj).__name__} are "
                              f"not supported (tensors, numbers, strings, lists, dicts)")

    def _put(self, path: str, t: torch.Tensor) -> str:
        key, n = path, 1
        while key in self.tensors:  # {1: ..., "1": ...} would share a path
            key, n = f"{path}#{n}", n + 1
        self.tensors[key] = _storable(t, self._storage)
        return key


class _Decoder:
    def __init__(self, tensors: Dict[str, torch.Tensor], where: Path) -> None:
        self.tensors = tensors
        self.where = where

    def decode(self, obj: Any) -> Any:
        if isinstance(obj, list):
            return [self.decode(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "__tensor__" in obj:
            return self._get(obj["__tensor__"])
        if "__ndarray__" in obj:
            return self._get(obj["__ndarray__"]).numpy().astype(np.dtype(obj["dtype"]))
        if "__tuple__" in obj:
            return tuple(self.decode(v) for v in obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__dict__" in obj:
            return {_hashable(self.decode(k)): self.decode(v) for k, v in obj["__dict__"]}
        return {k: self.decode(v) for k, v in obj.items()}

    def _get(self, key: str) -> torch.Tensor:
        try:
            return self.tensors[key]
        except KeyError:
            raise CheckpointCorruptError(f"{self.where} refers to tensor {key!r}, which "
                                         f"{TRAINING_TENSORS_FILE} lacks") from None


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k


# =========================================================================== RNG


def capture_rng() -> Dict[str, Any]:
    """The process's torch (CPU + initialised CUDA), numpy-global and ``random`` states."""
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(ckpt: Union[Checkpoint, Dict[str, Any]]) -> None:
    """Put back the RNG states saved with a checkpoint (load it ``with_training=True``).

    CUDA states are restored for as many devices as both the checkpoint and this machine
    have; a checkpoint from a CPU run leaves the CUDA generators alone.
    """
    state = ckpt.rng if isinstance(ckpt, Checkpoint) else ckpt
    if state is None:
        where = f" {ckpt.path}" if isinstance(ckpt, Checkpoint) else ""
        raise CheckpointError(f"checkpoint{where} has no RNG state (load it with "
                              f"with_training=True; it must be saved with rng=True)")
    try:
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        random.setstate(state["python"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointCorruptError(f"checkpoint RNG state is malformed: {exc}") from None
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        n = min(len(cuda_states), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda_states[i], device=i)


# =========================================================================== modules


def load_model_state(module: torch.nn.Module, state: Dict[str, torch.Tensor],
                     strict: bool = True, may_miss=frozenset()) -> Tuple[List[str], List[str]]:
    """``module.load_state_dict(state)`` with one clear error on a mismatch.

    DDP / DataParallel wrappers are looked through, and a state saved from such a wrapper
    (every key prefixed ``module.``) loads into the bare module. Shape mismatches always
    raise; missing / unexpected keys raise when ``strict``, except missing keys named in
    ``may_miss`` (parameters a config option adds, which keep their initialisation).
    Returns (missing, unexpected).
    """
    target = module.module if isinstance(
        module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)) else module
    own = target.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(
            k.startswith("module.") for k in own):
        state = {k[len("module."):]: v for k, v in state.items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                  if k in state and isinstance(state[k], torch.Tensor)
                  and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if mismatched:
        shown = ", ".join(f"{k} {c} vs {m}" for k, c, m in mismatched[:3])
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        problems.append(f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''}"
                        f" (checkpoint vs model: {shown}{more})")
    unexcused = [k for k in missing if k not in may_miss]
    if strict and unexcused:
        problems.append(f"{len(unexcused)} missing key{'s' if len(unexcused) > 1 else ''} "
                        f"({_few(unexcused)})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) > 1 else ''} "
                        f"({_few(unexpected)})")
    if problems:
        raise StateDictMismatchError(f"checkpoint weights do not fit this "
                                     f"{type(target).__name__}: " + "; ".join(problems)
                                     + " - was it saved with a different config?")
    target.load_state_dict(state, strict=strict and not missing)
    return missing, unexpected


def _few(keys: List[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f", ... {len(keys) - n} more" if len(keys) > n else "")


# =========================================================================== run directory


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

    def checkpoint_path(self, step: int) -> Path:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        return self.checkpoints_dir / f"step_{step:08d}"

    def checkpoints(self) -> List[Tuple[int, Path]]:
        """Complete checkpoints, oldest first; temp and half-written ones are ignored."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for entry in self.checkpoints_dir.iterdir():
            m = _STEP_DIR.match(entry.name)
            if m and entry.is_dir() and (entry / CONFIG_FILE).is_file() \
                    and (entry / MODEL_FILE).is_file():
                found.append((int(m.group(1)), entry))
        return sorted(found)

    def latest(self) -> Optional[Path]:
        """The newest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def prune(self, keep: int = 3) -> List[Path]:
        """Delete all but the ``keep`` newest checkpoints, and temp directories left by
        writers that are no longer running (a checkpoint left aside by a writer that died
        mid-replace is put back instead). Returns what was removed."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive int, got {keep!r}")
        removed = []
        for _, path in self.checkpoints()[:-keep]:
            shutil.rmtree(path)
            removed.append(path)
        if self.checkpoints_dir.is_dir():
            for entry in sorted(self.checkpoints_dir.iterdir()):
                m = _TEMP_DIR.match(entry.name)
                if not m or _pid_alive(int(m.group(2))):
                    continue
                home = self.checkpoints_dir / entry.name[1:].split(".", 1)[0]
                if m.group(1) == "old" and not home.exists() and _looks_like_checkpoint(entry):
                    # A writer died between moving the old checkpoint aside and moving the
                    # new one in: the old one is the only copy, so put it back.
                    os.rename(entry, home)
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
