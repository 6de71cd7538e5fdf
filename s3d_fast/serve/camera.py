"""The viewer's camera: yaw and pitch about the head centre (as ``render --yaw/--pitch``) and
a distance factor (the wheel's zoom), each held to a range that keeps the head in view."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..render import cameras
from .errors import ServeError

YAW_RANGE = 45.0
PITCH_RANGE = 30.0
DISTANCE_RANGE = (0.6, 1.6)


@dataclass(frozen=True)
class Camera:
    yaw: float = 0.0
    pitch: float = 0.0
    distance: float = 1.0

    @classmethod
    def parse(cls, message: dict) -> Camera:
        """From a client's ``{yaw, pitch, distance}`` (degrees, degrees, factor), clamped to range."""
        values = {}
        for name, default in (("yaw", 0.0), ("pitch", 0.0), ("distance", 1.0)):
            value = message.get(name, default)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ServeError(f"camera {name} must be a number, got {value!r}") from None
            if not math.isfinite(value):
                raise ServeError(f"camera {name} must be finite, got {value}")
            values[name] = value
        return cls(
            max(-YAW_RANGE, min(YAW_RANGE, values["yaw"])),
            max(-PITCH_RANGE, min(PITCH_RANGE, values["pitch"])),
            max(DISTANCE_RANGE[0], min(DISTANCE_RANGE[1], values["distance"])),
        )

    def pose(self, source_c2w: np.ndarray) -> np.ndarray:
        """The (4, 4) camera-to-head matrix: the source camera turned about the head centre,
        then moved along its line to the centre by ``distance``."""
        c2w = cameras.apply_offsets(np.asarray(source_c2w, np.float64)[None], [self.yaw, self.pitch, 0.0])[0]
        c2w[:3, 3] *= self.distance
        return c2w

    def describe(self) -> dict:
        return {k: round(v, 3) for k, v in asdict(self).items()}
