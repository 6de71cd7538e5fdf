"""The nerfacc release whose API this package follows (scripts that check it see 0.5.3)."""

__version__ = "0.5.3"
