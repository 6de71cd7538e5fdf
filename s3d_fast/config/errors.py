"""Config problems: one line naming the dotted key."""

from ..errors import S3DError


class ConfigError(S3DError, ValueError):
    """A config dict or override does not fit the config's dataclasses."""
