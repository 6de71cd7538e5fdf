"""Reading tiny-cuda-nn config dicts: every key must be one we reproduce, so a config
that means something we do not compute never passes silently."""

from __future__ import annotations

# Keys a Composite's nested entries carry for the composite itself.
NESTING_KEYS = frozenset({"n_dims_to_encode", "dims_to_encode_begin"})


def check_keys(component: str, config, allowed) -> dict:
    """``config`` as a dict; ValueError naming each key outside ``allowed`` (and ``otype``)."""
    if not isinstance(config, dict):
        raise TypeError(f"tinycudann {component} config must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(allowed) - {"otype"})
    if unknown:
        raise ValueError(
            f"s3d_fast.compat.tinycudann: {component} config key(s) not supported: {', '.join(map(repr, unknown))} "
            f"(supported: {', '.join(sorted(set(allowed) | {'otype'}))})"
        )
    return config


def refuse_value(component: str, key: str, value, supported: str):
    raise ValueError(f"s3d_fast.compat.tinycudann: {component} {key}={value!r} is not supported ({supported})")


def positive_int(component: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"tinycudann {component}: {key} must be a positive int, got {value!r}")
    return value


def same_name(a: str, b: str) -> bool:
    """tiny-cuda-nn compares component names case-insensitively."""
    return str(a).lower() == str(b).lower()
