"""Configs saved by earlier versions of s3d-fast, brought to today's form before they are read.

Version 1 (no "version" key) had three options that nothing read: ``loss.perceptual``,
``loss.adversarial`` and ``train.workers``. They are dropped; every other value is kept.
"""

from __future__ import annotations

import copy
from typing import Any

from .codec import config_from_dict
from .errors import ConfigError
from .schema import CONFIG_VERSION, Config

_REMOVED_IN_2 = (("loss", "perceptual"), ("loss", "adversarial"), ("train", "workers"))


def migrate(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict of any version this s3d-fast knows -> today's version."""
    if not isinstance(saved, dict):
        raise ConfigError(f"a saved config must be a mapping of keys, got {type(saved).__name__}")
    version = saved.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"config version {version!r} is not one this s3d-fast knows (1 to {CONFIG_VERSION})")
    if version > CONFIG_VERSION:
        raise ConfigError(
            f"the config is of version {version}, newer than this s3d-fast reads ({CONFIG_VERSION}): upgrade s3d-fast"
        )
    out = copy.deepcopy(saved)
    if version < 2:
        for section, key in _REMOVED_IN_2:
            if isinstance(out.get(section), dict):
                out[section].pop(key, None)
    out["version"] = CONFIG_VERSION
    return out


def load_config(saved: dict[str, Any]) -> Config:
    """A config as a run folder or checkpoint saved it, of this or an earlier version."""
    return config_from_dict(Config, migrate(saved))
