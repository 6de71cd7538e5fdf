"""The run config: its schema, the named presets, and its forms as JSON, overrides and text."""
from .codec import config_from_dict, config_to_dict
from .errors import ConfigError
from .fields import config_keys
from .overrides import apply_overrides
from .presets import CONFIGS, get_config, paper, small
from .schema import Config, LossConfig, ModelConfig, TrainConfig, check_model_config
from .text import flatten_config, format_config

__all__ = [
    "CONFIGS",
    "Config",
    "ConfigError",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "apply_overrides",
    "check_model_config",
    "config_from_dict",
    "config_keys",
    "config_to_dict",
    "flatten_config",
    "format_config",
    "get_config",
    "paper",
    "small",
]
