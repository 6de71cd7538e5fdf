"""The run config: its schema, the named presets, and its forms as JSON, overrides and text."""

from .codec import config_from_dict, config_to_dict
from .errors import ConfigError
from .fields import config_keys
from .migration import load_config, migrate
from .overrides import apply_overrides
from .phases import check_phases, config_at, phase_spans
from .presets import CONFIGS, demo, get_config, paper, small
from .schema import (
    CONFIG_VERSION,
    Config,
    LossConfig,
    ModelConfig,
    Phase,
    TrainConfig,
    check_config,
    check_model_config,
)
from .text import flatten_config, format_config

__all__ = [
    "CONFIGS",
    "CONFIG_VERSION",
    "Config",
    "demo",
    "ConfigError",
    "LossConfig",
    "ModelConfig",
    "Phase",
    "TrainConfig",
    "apply_overrides",
    "check_config",
    "check_model_config",
    "check_phases",
    "config_at",
    "config_from_dict",
    "config_keys",
    "config_to_dict",
    "flatten_config",
    "format_config",
    "get_config",
    "load_config",
    "migrate",
    "paper",
    "phase_spans",
    "small",
]
