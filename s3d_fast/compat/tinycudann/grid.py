"""tiny-cuda-nn's ``Grid`` encodings (``HashGrid``, ``DenseGrid``, ``TiledGrid``, ``Grid``
with ``type``): hash and dense grids over 1 to 3 dims run on s3d-fast's fused hash-grid
op (tcnn-exact, docs/kernels/hashgrid.md); tiled grids and grids over 4 dims, which the
op does not cover, run in pure PyTorch (grid_torch.py). Parameters: tcnn's flat table,
level-major, then entry, then feature; initialised uniform(-1e-4, 1e-4) from tcnn's
generator in the order tcnn's initialisation kernel writes them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...ops import hashgrid_encode
from ...ops.hashgrid_config import TCNN_KEYS, HashGridConfig, tcnn_default_scale
from ._config import check_keys, positive_int, refuse_value, same_name
from .encoding_base import EncodingSpec
from .grid_torch import grid_encode

# the keys HashGridConfig.from_tcnn reads, tcnn's other name for n_features, and a flag refused when set
KEYS = TCNN_KEYS | {"n_grid_features", "fixed_point_pos"}
_MAX_LEVEL_PARAMS = 0xFFFFFFFF // 2  # tcnn caps a level's dense count


@dataclass(frozen=True)
class GridLayout:
    """Per-level float32 scales, resolutions and entry offsets (tcnn's GridEncodingTemplated)."""

    n_features_per_level: int
    scales: tuple
    resolutions: tuple
    offsets: tuple

    @property
    def n_params(self) -> int:
        return self.offsets[-1] * self.n_features_per_level


def grid_layout(n_dims, n_levels, features, log2_hashmap_size, base_resolution, per_level_scale, grid_type):
    f32 = np.float32
    log2_scale = np.log2(f32(per_level_scale))
    scales, resolutions, offsets = [], [], [0]
    for level in range(n_levels):
        scale = f32(np.exp2(f32(level) * log2_scale) * f32(base_resolution) - f32(1.0))
        resolution = int(math.ceil(float(scale))) + 1
        size = min(resolution**n_dims, _MAX_LEVEL_PARAMS)
        size = (size + 7) // 8 * 8
        if grid_type == "tiled":
            size = min(size, base_resolution**n_dims)
        elif grid_type == "hash":
            size = min(size, 1 << log2_hashmap_size)
        scales.append(float(scale))
        resolutions.append(resolution)
        offsets.append(offsets[-1] + size)
    return GridLayout(features, tuple(scales), tuple(resolutions), tuple(offsets))


def _default_type(otype: str) -> str:
    if same_name(otype, "TiledGrid"):
        return "tiled"
    return "dense" if same_name(otype, "DenseGrid") else "hash"


class GridSpec(EncodingSpec):
    pad_value = 0.0  # tcnn pads a grid's output with zeros

    def __init__(self, n_input_dims: int, config: dict):
        check_keys("Grid", config, KEYS)
        name = "Grid"
        if not 1 <= n_input_dims <= 4:
            refuse_value(name, "n_input_dims", n_input_dims, "1 to 4")
        grid_type = str(config.get("type", _default_type(config.get("otype", "Grid")))).lower()
        if grid_type not in ("hash", "dense", "tiled"):
            refuse_value(name, "type", config["type"], "Hash, Dense or Tiled")
        features = config.get("n_features_per_level", 2)
        if features not in (1, 2, 4, 8):
            refuse_value(name, "n_features_per_level", features, "1, 2, 4 or 8")
        total = config.get("n_features", config.get("n_grid_features"))
        if total is not None:
            if "n_levels" in config:
                raise ValueError("tinycudann Grid: give n_features or n_levels, not both (one determines the other)")
            n_levels = positive_int(name, "n_features", total) // features
        else:
            n_levels = positive_int(name, "n_levels", config.get("n_levels", 16))
        interpolation = str(config.get("interpolation", "Linear")).lower()
        if interpolation not in ("linear", "smoothstep"):
            refuse_value(name, "interpolation", config["interpolation"], "Linear or Smoothstep")
        for flag in ("stochastic_interpolation", "fixed_point_pos"):
            if config.get(flag, False):
                refuse_value(name, flag, config[flag], "false only")
        if not same_name(config.get("hash", "CoherentPrime"), "CoherentPrime"):
            refuse_value(name, "hash", config["hash"], "CoherentPrime, tcnn's default and its only compiled hash")
        base = positive_int(name, "base_resolution", config.get("base_resolution", 16))
        scale = float(config.get("per_level_scale", tcnn_default_scale(grid_type, base, n_levels)))
        self.grid_type, self.interpolation = grid_type, interpolation
        self.fused = grid_type in ("hash", "dense") and n_input_dims <= 3
        if self.fused:
            self.config = HashGridConfig(
                n_levels, features, int(config.get("log2_hashmap_size", 19)), base, scale, interpolation, grid_type
            )
            self.layout = self.config.layout(n_input_dims)
        else:
            self.layout = grid_layout(
                n_input_dims, n_levels, features, int(config.get("log2_hashmap_size", 19)), base, scale, grid_type
            )
        self.n_levels, self.n_features_per_level = n_levels, features
        self.log2_hashmap_size, self.base_resolution, self.per_level_scale = (
            int(config.get("log2_hashmap_size", 19)),
            base,
            scale,
        )
        self.required_output_alignment = features
        self.n_params = self.layout.n_params
        super().__init__(n_input_dims, n_levels * features)

    def encode(self, x, params):
        if self.fused:
            return hashgrid_encode(x, params, self.config)
        return grid_encode(x, params, self.layout, self.grid_type, self.interpolation == "smoothstep")

    def initialize(self, rng) -> np.ndarray:
        # tcnn's kernel: thread i writes entries i, i + T, i + 2T, i + 3T (T = ceil(n / 4))
        # from draws 4i .. 4i + 3, then the generator moves on by n.
        n = self.n_params
        threads = -(-n // 4)
        start = rng.state
        draws = rng.next_floats(4 * threads).reshape(threads, 4).T.reshape(-1)[:n]
        rng.state = start
        rng.advance(n)
        lower, width = np.float32(-1e-4), np.float32(2e-4)
        return (draws.astype(np.float64) * float(width) + float(lower)).astype(np.float32)  # one rounding, as fmaf

    def hyperparams(self) -> dict:
        return {
            "otype": "Grid",
            "type": self.grid_type.capitalize(),
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale,
            "interpolation": self.interpolation.capitalize(),
        }
