"""The server's limits, each refused with a message naming it (``s3d-fast serve --help``)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Limits:
    max_sessions: int = 4
    max_upload_bytes: int = 20 * 1024 * 1024  # a phone photo or a minute of wav
    max_image_pixels: int = 4096 * 4096
    max_speech_seconds: float = 60.0
    max_text_chars: int = 1000
    max_portraits: int = 8  # baked portraits kept (least recently used evicted)
    idle_seconds: float = 120.0  # a session with no request and no peer connection for this long is closed

    def check(self) -> Limits:
        from .errors import ServeError

        for name in ("max_sessions", "max_upload_bytes", "max_image_pixels", "max_text_chars", "max_portraits"):
            if getattr(self, name) < 1:
                raise ServeError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("max_speech_seconds", "idle_seconds"):
            if not 0 < getattr(self, name) < math.inf:  # NaN and inf too
                raise ServeError(f"--{name.replace('_', '-')} must be a positive number, got {getattr(self, name)}")
        return self
