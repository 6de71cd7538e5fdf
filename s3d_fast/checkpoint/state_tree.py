"""Optimizer and scheduler states as JSON plus a flat dict of tensors.

Their state dicts are trees of dicts (int keys in "state"), lists, tuples ("betas"),
numbers (inf in ReduceLROnPlateau), strings and tensors. JSON holds all but the tensors,
given small tagged objects for what it cannot say directly; the tensors go to
safetensors under their path in the tree.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointCorruptError, CheckpointError
from .tensors import storable

_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")


class Encoder:
    """A state tree -> JSON-able tree; its tensors collect in ``self.tensors``."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
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
                    raise CheckpointError(f"cannot save {path}: numpy dtype {obj.dtype} is not supported") from None
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
            return {
                "__dict__": [
                    [self.encode(k, f"{path}/key{i}"), self.encode(v, f"{path}/{k}")]
                    for i, (k, v) in enumerate(obj.items())
                ]
            }
        raise CheckpointError(
            f"cannot save {path}: values of type {type(obj).__name__} are "
            f"not supported (tensors, numbers, strings, lists, dicts)"
        )

    def _put(self, path: str, t: torch.Tensor) -> str:
        key, n = path, 1
        while key in self.tensors:  # {1: ..., "1": ...} would share a path
            key, n = f"{path}#{n}", n + 1
        self.tensors[key] = storable(t, self._storage)
        return key


class Decoder:
    """The JSON-able tree and its tensors -> the state tree."""

    def __init__(self, tensors: dict[str, torch.Tensor], where: Path) -> None:
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
            raise CheckpointCorruptError(
                f"{self.where} refers to tensor {key!r}, which training.safetensors lacks"
            ) from None


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k
