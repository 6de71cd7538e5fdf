"""The options of a multi-resolution hash grid, validated once, and the level layout
they give for an input dimension.

``HashGridConfig`` is the one place the options are named: the fused op, the
pure-PyTorch reference, ``nn.HashGrid`` and the tiny-cuda-nn config translation
all take it. ``HashGridLayout`` follows tiny-cuda-nn's ``GridEncodingTemplated``
constructor (encodings/grid.h): per level ``scale = exp2f(l * log2f(per_level_scale))
* base_resolution - 1`` in float32, ``resolution = ceil(scale) + 1``, entries
``min(next_multiple(resolution^D, 8), 2^log2_hashmap_size)`` for hash grids (the
dense count for dense grids), so the three can never disagree on sizes or scales.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

INTERPOLATIONS = ("linear", "smoothstep")
GRID_TYPES = ("hash", "dense")
MAX_LEVELS = 32  # tiny-cuda-nn's limit
_TCNN_MAX_PARAMS = 0xFFFFFFFF // 2  # tcnn caps a level's dense count at uint32 max / 2

# tcnn encoding-config keys understood here (anything else is an error, so a
# config that means something we do not reproduce never passes silently).
TCNN_KEYS = frozenset(
    {
        "otype",
        "type",
        "n_levels",
        "n_features",
        "n_features_per_level",
        "log2_hashmap_size",
        "base_resolution",
        "per_level_scale",
        "interpolation",
        "stochastic_interpolation",
        "hash",
    }
)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def tcnn_default_scale(grid_type: str, base_resolution: int, n_levels: int) -> float:
    """tcnn's per_level_scale when a config leaves it out: 2 for hash grids; for dense grids
    the scale that puts the finest level at 256 cells (in float32, as tcnn computes it)."""
    if grid_type != "dense":
        return 2.0
    f32 = np.float32
    return float(np.exp(np.log(f32(256.0) / f32(base_resolution)) / f32(max(n_levels - 1, 1))))


@dataclass(frozen=True)
class HashGridConfig:
    """tiny-cuda-nn's HashGrid/DenseGrid options (defaults are tcnn's).

    ``grid_type`` ``hash`` hashes a level once resolution^D exceeds
    2^log2_hashmap_size; ``dense`` never does. ``interpolation`` and
    ``grid_type`` are case-insensitive and stored lower-case.
    """

    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 2.0
    interpolation: str = "linear"
    grid_type: str = "hash"

    def __post_init__(self):
        def store(name, value):
            object.__setattr__(self, name, value)

        store("n_levels", _positive_int("n_levels", self.n_levels))
        if self.n_levels > MAX_LEVELS:
            raise ValueError(f"n_levels must be at most {MAX_LEVELS} (tiny-cuda-nn's limit), got {self.n_levels}")
        store("n_features_per_level", _positive_int("n_features_per_level", self.n_features_per_level))
        if self.n_features_per_level not in (1, 2, 4, 8):
            raise ValueError(f"n_features_per_level must be 1, 2, 4 or 8, got {self.n_features_per_level}")
        store("log2_hashmap_size", _positive_int("log2_hashmap_size", self.log2_hashmap_size))
        if self.log2_hashmap_size > 31:
            raise ValueError(f"log2_hashmap_size must be at most 31, got {self.log2_hashmap_size}")
        store("base_resolution", _positive_int("base_resolution", self.base_resolution))
        scale = self.per_level_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"per_level_scale must be a positive number, got {scale!r}")
        store("per_level_scale", float(scale))
        store("interpolation", str(self.interpolation).lower())
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        store("grid_type", str(self.grid_type).lower())
        if self.grid_type not in GRID_TYPES:
            raise ValueError(f"grid_type must be one of {GRID_TYPES}, got {self.grid_type!r}")

    @classmethod
    def coerce(cls, config: HashGridConfig | None, options: dict) -> HashGridConfig:
        """``config``, or one built from keyword options (the ops take either, not both)."""
        if config is None:
            return cls(**options)
        if not isinstance(config, cls):
            raise TypeError(f"config must be a HashGridConfig, got {type(config).__name__}")
        if options:
            raise TypeError(f"give a config or keyword options, not both (got {', '.join(sorted(options))})")
        return config

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def layout(self, n_input_dims: int) -> HashGridLayout:
        """Per-level sizes, offsets and scales of this grid over ``n_input_dims`` (1..3)."""
        n_input_dims = _positive_int("n_input_dims", n_input_dims)
        if n_input_dims > 3:
            raise ValueError(f"n_input_dims must be 1, 2 or 3, got {n_input_dims}")
        return _layout(self, n_input_dims)

    @classmethod
    def from_tcnn(cls, config: dict) -> HashGridConfig:
        """From a tiny-cuda-nn encoding config
        (``{"otype": "HashGrid" | "Grid" | "DenseGrid", ...}``), with tcnn's defaults."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - TCNN_KEYS)
        if unknown:
            raise ValueError(f"unsupported tiny-cuda-nn grid config keys: {', '.join(unknown)}")
        otype = str(config.get("otype", "Grid"))
        default_type = {"hashgrid": "Hash", "densegrid": "Dense", "grid": "Hash"}.get(otype.lower())
        if default_type is None:
            raise ValueError(f"otype must be HashGrid, Grid or DenseGrid, got {otype!r}")
        grid_type = str(config.get("type", default_type)).lower()
        if grid_type not in GRID_TYPES:
            raise ValueError(f"grid type {config.get('type')!r} is not supported (Hash or Dense)")
        features = int(config.get("n_features_per_level", 2))
        if "n_features" in config:
            if "n_levels" in config:
                raise ValueError("give n_features or n_levels, not both (one determines the other)")
            if int(config["n_features"]) % features:
                raise ValueError("n_features must be a multiple of n_features_per_level")
            n_levels = int(config["n_features"]) // features
        else:
            n_levels = int(config.get("n_levels", 16))
        base = int(config.get("base_resolution", 16))
        interpolation = str(config.get("interpolation", "Linear")).lower()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {config.get('interpolation')!r} is not supported (Linear or Smoothstep)")
        if config.get("stochastic_interpolation", False):
            raise ValueError("stochastic_interpolation is not supported")
        if str(config.get("hash", "CoherentPrime")).lower() != "coherentprime":
            raise ValueError(f"hash {config['hash']!r} is not supported (CoherentPrime only)")
        return cls(
            n_levels=n_levels,
            n_features_per_level=features,
            log2_hashmap_size=int(config.get("log2_hashmap_size", 19)),
            base_resolution=base,
            per_level_scale=float(config.get("per_level_scale", tcnn_default_scale(grid_type, base, n_levels))),
            interpolation=interpolation,
            grid_type=grid_type,
        )

    def to_tcnn(self) -> dict:
        """The tiny-cuda-nn encoding config of this grid."""
        return {
            "otype": "HashGrid" if self.grid_type == "hash" else "DenseGrid",
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale,
            "interpolation": self.interpolation.capitalize(),
        }


@dataclass(frozen=True)
class HashGridLayout:
    """What a config means over ``n_input_dims``: per-level float32 scales (as
    Python floats), resolutions, entry offsets (n_levels + 1 values) and whether
    each level is hashed."""

    config: HashGridConfig
    n_input_dims: int
    scales: tuple
    resolutions: tuple
    offsets: tuple
    hashed: tuple

    @property
    def sizes(self) -> tuple:
        """Entries per level (each entry holds n_features_per_level values)."""
        return tuple(b - a for a, b in zip(self.offsets[:-1], self.offsets[1:]))

    @property
    def n_params(self) -> int:
        return self.offsets[-1] * self.config.n_features_per_level

    @property
    def n_output_dims(self) -> int:
        return self.config.n_output_dims


@functools.lru_cache(maxsize=64)  # a module asks for its layout on every forward
def _layout(config: HashGridConfig, n_input_dims: int) -> HashGridLayout:
    f32 = np.float32
    log2_scale = np.log2(f32(config.per_level_scale))
    scales, resolutions, offsets, hashed = [], [], [0], []
    for level in range(config.n_levels):
        scale = f32(np.exp2(f32(level) * log2_scale) * f32(config.base_resolution) - f32(1.0))
        resolution = int(math.ceil(float(scale))) + 1
        dense = resolution**n_input_dims
        params = min(dense, _TCNN_MAX_PARAMS)
        params = (params + 7) // 8 * 8
        if config.grid_type == "hash":
            params = min(params, 1 << config.log2_hashmap_size)
        if offsets[-1] + params > 0xFFFFFFFF:
            raise ValueError("the grid has more than 2^32 entries")
        scales.append(float(scale))
        resolutions.append(resolution)
        offsets.append(offsets[-1] + params)
        hashed.append(dense > params)
    return HashGridLayout(config, n_input_dims, tuple(scales), tuple(resolutions), tuple(offsets), tuple(hashed))
