"""What the config dataclasses' annotations say: their keys, their types in words, and the
keys nearest to a misspelt one."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any


def is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def to_plain(value: Any) -> Any:
    if is_dataclass_instance(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def type_hints(cls: type) -> dict[str, Any]:
    # Resolves string annotations (``from __future__ import annotations``) in the
    # dataclass's own module.
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # a broken annotation is a programming error, say where
        raise TypeError(f"cannot resolve the annotations of {cls.__name__}: {exc}") from exc


def is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType)


def type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def all_keys(cls: type, prefix: str) -> list[str]:
    keys: list[str] = []
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:  # computed: not settable
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            keys.extend(all_keys(tp, prefix + f.name + "."))
        else:
            keys.append(prefix + f.name)
    return keys


def suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    if not close:
        # Match on the last component too: "model.chanels" -> "model.planes.channels".
        leaf = key.rsplit(".", 1)[-1]
        leaves = sorted({c.rsplit(".", 1)[-1] for c in candidates})
        near = set(difflib.get_close_matches(leaf, leaves, n=3, cutoff=0.6))
        close = [c for c in candidates if c.rsplit(".", 1)[-1] in near][:5]
    return f"; did you mean {', '.join(close)}?" if close else ""


def config_keys(cls_or_cfg: Any) -> list[str]:
    """Every settable dotted key of a config class or instance."""
    cls = cls_or_cfg if isinstance(cls_or_cfg, type) else type(cls_or_cfg)
    return all_keys(cls, "")
