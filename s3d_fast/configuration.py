"""Configs as nested dataclasses: to/from JSON-able dicts, command-line overrides, printing.

The model and training configs are plain (possibly frozen) dataclasses whose fields are
ints, floats, bools, strings, ``Literal`` choices, ``Optional`` values, tuples/lists of
those, dicts, or further dataclasses. This module knows nothing of what the fields mean;
it only moves them between a dataclass, a dict (``config.json`` in a checkpoint) and
``key=value`` strings (``s3d-fast train --set model.planes.channels=16``).

Every user mistake (an unknown key, a value of the wrong type) is a :class:`ConfigError`
whose message names the dotted key, so the CLI can print it as one line.
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import types
import typing
from typing import Any, Dict, Iterable, List

from .errors import S3DError

__all__ = [
    "ConfigError",
    "config_to_dict",
    "config_from_dict",
    "apply_overrides",
    "format_config",
    "flatten_config",
    "config_keys",
]


class ConfigError(S3DError, ValueError):
    """A config dict or override does not fit the config's dataclasses."""


# --------------------------------------------------------------------------- to dict


def config_to_dict(cfg: Any) -> Dict[str, Any]:
    """Nested dataclass -> nested dict of JSON-able values (tuples become lists)."""
    if not _is_dataclass_instance(cfg):
        raise TypeError(f"config_to_dict expects a dataclass instance, got {type(cfg).__name__}")
    return _to_plain(cfg)


def _to_plain(value: Any) -> Any:
    if _is_dataclass_instance(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


# --------------------------------------------------------------------------- from dict


def config_from_dict(cls: type, d: Dict[str, Any]) -> Any:
    """Nested dict -> dataclass ``cls``, strictly.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming the dotted
    key; keys left out take the field's default (a field without a default is required).
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"config_from_dict expects a dataclass type, got {cls!r}")
    return _build(cls, d, "")


def _build(cls: type, d: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping of keys for {cls.__name__}, "
                          f"got {type(d).__name__}")
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    # Non-init fields are computed in __post_init__; config_to_dict writes them, so a
    # round trip must accept (and recompute) them.
    computed = {f.name for f in dataclasses.fields(cls) if not f.init}
    unknown = [k for k in d if k not in fields and k not in computed]
    if unknown:
        key = prefix + str(unknown[0])
        raise ConfigError(f"unknown config key '{key}'" + _suggest(key, _all_keys(cls, prefix)))
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in d:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"config key '{key}' is required")
            continue
        kwargs[name] = _coerce(hints[name], d[name], key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` (from JSON) against annotation ``tp`` and convert where lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _coerce(arm, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        # Same value and same type: a JSON 1 is not the Literal True.
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(f"config key '{key}': expected one of "
                          f"{', '.join(repr(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if _is_dataclass_instance(value) and isinstance(value, tp):
            return value
        return _build(tp, value, key + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(f"config key '{key}': expected one of {choices}, got {value!r}") from None
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} values "
                                  f"({_type_name(tp)}), got {len(value)}")
            items = [_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else list(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        if len(args) == 2:
            return {k: _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"config key '{key}': expected null, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    raise TypeError(f"config key '{key}': unsupported annotation {tp!r}")


# --------------------------------------------------------------------------- overrides


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """Return a copy of ``cfg`` with ``"dotted.key=value"`` strings applied in order.

    Values are parsed with the field's annotation: ints, floats (``3e-4``), bools
    (true/false/yes/no/on/off/1/0), strings, ``none``/``null`` for Optional fields, tuples
    and lists as ``64,128`` (brackets allowed; an empty value is an empty tuple), and JSON
    for dict fields. Dataclass ``__post_init__`` checks run on every replaced level.
    """
    if not _is_dataclass_instance(cfg):
        raise TypeError(f"apply_overrides expects a dataclass instance, got {type(cfg).__name__}")
    if isinstance(overrides, str):
        raise TypeError("apply_overrides expects a list of 'key=value' strings, not one string")
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value "
                              f"(e.g. train.lr=3e-4)")
        key, text = item.split("=", 1)
        key = key.strip()
        cfg = _set(cfg, key.split("."), text.strip(), key, "", config_keys(cfg))
    return cfg


def _set(node: Any, parts: List[str], text: str, key: str, prefix: str,
         all_keys: List[str]) -> Any:
    name = parts[0]
    fields = {f.name: f for f in dataclasses.fields(node) if f.init}
    if name not in fields:
        raise ConfigError(f"unknown config key '{key}'" + _suggest(key, all_keys))
    tp = _type_hints(type(node))[name]
    here = prefix + name
    if len(parts) == 1:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            example = next(iter(_all_keys(tp, here + ".")), here + ".KEY")
            raise ConfigError(f"config key '{here}' is a section: set one of its keys, "
                              f"e.g. {example}=...")
        new_value = _parse(tp, text, here)
    else:
        child = getattr(node, name)
        if not _is_dataclass_instance(child):
            raise ConfigError(f"unknown config key '{key}': '{here}' is a value, not a section"
                              + _suggest(key, all_keys))
        new_value = _set(child, parts[1:], text, key, here + ".", all_keys)
    try:
        return dataclasses.replace(node, **{name: new_value})
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config key '{here}': {exc}") from None


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}


def _parse(tp: Any, text: str, key: str) -> Any:
    """Parse command-line text for a field of annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _parse_json_or_text(text)
    if _is_union(tp):
        if text.lower() in _NONE and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _parse(arm, text, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': cannot read {text!r} as {_type_name(tp)}")
    if origin is typing.Literal:
        for choice in args:
            if isinstance(choice, bool):
                if (text.lower() in _TRUE and choice) or (text.lower() in _FALSE and not choice):
                    return choice
            elif str(choice) == text:
                return choice
        raise ConfigError(f"config key '{key}': expected one of "
                          f"{', '.join(str(a) for a in args)}, got {text!r}")
    if origin in (tuple, list) or tp in (tuple, list):
        body = text.strip()
        if body[:1] in "([" and body[-1:] in ")]":
            body = body[1:-1]
        pieces = [p.strip() for p in body.split(",")] if body.strip() else []
        if pieces and pieces[-1] == "":  # trailing comma: "64,"
            pieces = pieces[:-1]
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(pieces) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} comma-separated "
                                  f"values, got {text!r}")
            items = [_parse(a, p, key) for a, p in zip(args, pieces)]
        else:
            item_tp = args[0] if args else Any
            items = [_parse(item_tp, p, key) for p in pieces]
        return tuple(items) if (origin is tuple or tp is tuple) else list(items)
    if origin is dict or tp is dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"config key '{key}': expected a JSON object, got {text!r}") from None
        return _coerce(tp, value, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if text in (str(member.value), member.name):
                return member
        choices = ", ".join(str(m.value) for m in tp)
        raise ConfigError(f"config key '{key}': expected one of {choices}, got {text!r}")
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"config key '{key}': expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            pass
        try:  # "1e3" is a fine way to write 1000 steps
            as_float = float(text)
        except ValueError:
            as_float = None
        if as_float is not None and as_float.is_integer():
            return int(as_float)
        raise ConfigError(f"config key '{key}': expected an integer, got {text!r}")
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"config key '{key}': expected a number, got {text!r}") from None
    if tp is str:
        return text
    if tp is type(None):
        if text.lower() in _NONE:
            return None
        raise ConfigError(f"config key '{key}': expected none, got {text!r}")
    raise ConfigError(f"config key '{key}': cannot be set from the command line "
                      f"(type {_type_name(tp)})")


def _parse_json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --------------------------------------------------------------------------- printing


def flatten_config(cfg: Any) -> Dict[str, Any]:
    """``{"model.planes.channels": 32, ...}`` in field order."""
    out: Dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if _is_dataclass_instance(value):
                walk(value, prefix + f.name + ".")
            else:
                out[prefix + f.name] = value

    if not _is_dataclass_instance(cfg):
        raise TypeError(f"flatten_config expects a dataclass instance, got {type(cfg).__name__}")
    walk(cfg, "")
    return out


def config_keys(cls_or_cfg: Any) -> List[str]:
    """Every settable dotted key of a config class or instance."""
    cls = cls_or_cfg if isinstance(cls_or_cfg, type) else type(cls_or_cfg)
    return _all_keys(cls, "")


def format_config(cfg: Any, indent: int = 2) -> str:
    """YAML-like text of a config: sections nest, one ``key: value`` per line."""
    if not _is_dataclass_instance(cfg):
        raise TypeError(f"format_config expects a dataclass instance, got {type(cfg).__name__}")
    lines: List[str] = []

    def walk(node: Any, depth: int) -> None:
        pad = " " * (indent * depth)
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if _is_dataclass_instance(value):
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
    if isinstance(value, dict):
        return json.dumps(_to_plain(value))
    return str(value)


# --------------------------------------------------------------------------- helpers


def _type_hints(cls: type) -> Dict[str, Any]:
    # Resolves string annotations (``from __future__ import annotations``) in the
    # dataclass's own module.
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # a broken annotation is a programming error, say where
        raise TypeError(f"cannot resolve the annotations of {cls.__name__}: {exc}") from exc


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _all_keys(cls: type, prefix: str) -> List[str]:
    keys: List[str] = []
    hints = _type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:  # computed: not settable
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            keys.extend(_all_keys(tp, prefix + f.name + "."))
        else:
            keys.append(prefix + f.name)
    return keys


def _suggest(key: str, candidates: List[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    if not close:
        # Match on the last component too: "model.chanels" -> "model.planes.channels".
        leaf = key.rsplit(".", 1)[-1]
        leaves = sorted({c.rsplit(".", 1)[-1] for c in candidates})
        near = set(difflib.get_close_matches(leaf, leaves, n=3, cutoff=0.6))
        close = [c for c in candidates if c.rsplit(".", 1)[-1] in near][:5]
    return f"; did you mean {', '.join(close)}?" if close else ""
