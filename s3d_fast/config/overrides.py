"""``--set dotted.key=value`` overrides, parsed with each field's annotation."""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from collections.abc import Iterable
from typing import Any

from .codec import coerce
from .errors import ConfigError
from .fields import all_keys, config_keys, is_dataclass_instance, is_union, suggest, type_hints, type_name


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """Return a copy of ``cfg`` with ``"dotted.key=value"`` strings applied in order.

    Values are parsed with the field's annotation: ints, floats (``3e-4``), bools
    (true/false/yes/no/on/off/1/0), strings, ``none``/``null`` for Optional fields, tuples
    and lists as ``64,128`` (brackets allowed; an empty value is an empty tuple), and JSON
    for dict fields. Dataclass ``__post_init__`` checks run on every replaced level.
    """
    if not is_dataclass_instance(cfg):
        raise TypeError(f"apply_overrides expects a dataclass instance, got {type(cfg).__name__}")
    if isinstance(overrides, str):
        raise TypeError("apply_overrides expects a list of 'key=value' strings, not one string")
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.lr=3e-4)")
        key, text = item.split("=", 1)
        key = key.strip()
        cfg = _set(cfg, key.split("."), text.strip(), key, "", config_keys(cfg))
    return cfg


def _set(node: Any, parts: list[str], text: str, key: str, prefix: str, known_keys: list[str]) -> Any:
    name = parts[0]
    fields = {f.name: f for f in dataclasses.fields(node) if f.init}
    if name not in fields:
        raise ConfigError(f"unknown config key '{key}'" + suggest(key, known_keys))
    tp = type_hints(type(node))[name]
    here = prefix + name
    if len(parts) == 1:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            example = next(iter(all_keys(tp, here + ".")), here + ".KEY")
            raise ConfigError(f"config key '{here}' is a section: set one of its keys, e.g. {example}=...")
        new_value = _parse(tp, text, here)
    else:
        child = getattr(node, name)
        if not is_dataclass_instance(child):
            raise ConfigError(
                f"unknown config key '{key}': '{here}' is a value, not a section" + suggest(key, known_keys)
            )
        new_value = _set(child, parts[1:], text, key, here + ".", known_keys)
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
    if is_union(tp):
        if text.lower() in _NONE and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _parse(arm, text, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': cannot read {text!r} as {type_name(tp)}")
    if origin is typing.Literal:
        for choice in args:
            if isinstance(choice, bool):
                if (text.lower() in _TRUE and choice) or (text.lower() in _FALSE and not choice):
                    return choice
            elif str(choice) == text:
                return choice
        raise ConfigError(f"config key '{key}': expected one of {', '.join(str(a) for a in args)}, got {text!r}")
    if (origin in (tuple, list) and args and dataclasses.is_dataclass(args[0])) or origin is dict or tp is dict:
        # Structured values (``train.phases``, dicts) are written as JSON.
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"config key '{key}': expected JSON, got {text!r}") from None
        return coerce(tp, value, key)
    if origin in (tuple, list) or tp in (tuple, list):
        body = text.strip()
        if body[:1] in "([" and body[-1:] in ")]":
            body = body[1:-1]
        pieces = [p.strip() for p in body.split(",")] if body.strip() else []
        if pieces and pieces[-1] == "":  # trailing comma: "64,"
            pieces = pieces[:-1]
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(pieces) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} comma-separated values, got {text!r}")
            items = [_parse(a, p, key) for a, p in zip(args, pieces)]
        else:
            item_tp = args[0] if args else Any
            items = [_parse(item_tp, p, key) for p in pieces]
        return tuple(items) if (origin is tuple or tp is tuple) else list(items)
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
    raise ConfigError(f"config key '{key}': cannot be set from the command line (type {type_name(tp)})")


def _parse_json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
