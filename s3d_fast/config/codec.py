"""Configs between nested dataclasses and JSON-able dicts (``config.json`` in a run and a
checkpoint), strictly: an unknown key or a value of the wrong type is a ConfigError
naming the dotted key."""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

from .errors import ConfigError
from .fields import all_keys, is_dataclass_instance, is_union, suggest, to_plain, type_hints, type_name


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested dataclass -> nested dict of JSON-able values (tuples become lists)."""
    if not is_dataclass_instance(cfg):
        raise TypeError(f"config_to_dict expects a dataclass instance, got {type(cfg).__name__}")
    return to_plain(cfg)


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
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
        raise ConfigError(f"{where}: expected a mapping of keys for {cls.__name__}, got {type(d).__name__}")
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    # Non-init fields are computed in __post_init__; config_to_dict writes them, so a
    # round trip must accept (and recompute) them.
    computed = {f.name for f in dataclasses.fields(cls) if not f.init}
    unknown = [k for k in d if k not in fields and k not in computed]
    if unknown:
        key = prefix + str(unknown[0])
        raise ConfigError(f"unknown config key '{key}'" + suggest(key, all_keys(cls, prefix)))
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in d:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"config key '{key}' is required")
            continue
        kwargs[name] = coerce(hints[name], d[name], key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` (from JSON) against annotation ``tp`` and convert where lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if is_union(tp):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return coerce(arm, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        # Same value and same type: a JSON 1 is not the Literal True.
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(f"config key '{key}': expected one of {', '.join(repr(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if is_dataclass_instance(value) and isinstance(value, tp):
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
            raise ConfigError(f"config key '{key}': expected {type_name(tp)}, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(
                    f"config key '{key}': expected {len(args)} values ({type_name(tp)}), got {len(value)}"
                )
            items = [coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else list(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        if len(args) == 2:
            return {k: coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
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
        raise ConfigError(f"config key '{key}': expected {type_name(tp)}, got {value!r}")
    raise TypeError(f"config key '{key}': unsupported annotation {tp!r}")
