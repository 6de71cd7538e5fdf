"""A config as text: YAML-like lines for people, a flat dotted-key dict for tables."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from .fields import is_dataclass_instance, to_plain


def flatten_config(cfg: Any) -> dict[str, Any]:
    """``{"model.planes.channels": 32, ...}`` in field order."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if is_dataclass_instance(value):
                walk(value, prefix + f.name + ".")
            else:
                out[prefix + f.name] = value

    if not is_dataclass_instance(cfg):
        raise TypeError(f"flatten_config expects a dataclass instance, got {type(cfg).__name__}")
    walk(cfg, "")
    return out


def format_config(cfg: Any, indent: int = 2) -> str:
    """YAML-like text of a config: sections nest, one ``key: value`` per line."""
    if not is_dataclass_instance(cfg):
        raise TypeError(f"format_config expects a dataclass instance, got {type(cfg).__name__}")
    lines: list[str] = []

    def walk(node: Any, depth: int) -> None:
        pad = " " * (indent * depth)
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if is_dataclass_instance(value):
                lines.append(f"{pad}{f.name}:")
                walk(value, depth + 1)
            else:
                lines.append(f"{pad}{f.name}: {_format_value(value)}")

    walk(cfg, 0)
    return "\n".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict) or is_dataclass_instance(value):
        return json.dumps(to_plain(value))
    return str(value)
