"""Level layout of a multi-resolution hash grid, as tiny-cuda-nn computes it.

Shared by the fused op, the pure-PyTorch reference and ``nn.HashGrid`` so the
three can never disagree on sizes, offsets or scales. Arithmetic follows
tiny-cuda-nn's ``GridEncodingTemplated`` constructor (encodings/grid.h): per
level ``scale = exp2f(l * log2f(per_level_scale)) * base_resolution - 1`` in
float32, ``resolution = ceil(scale) + 1``, entries
``min(next_multiple(resolution^D, 8), 2^log2_hashmap_size)`` for hash grids
(the dense count for dense grids).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERPOLATIONS = ("linear", "smoothstep")
GRID_TYPES = ("hash", "dense")
_TCNN_MAX_PARAMS = 0xFFFFFFFF // 2  # tcnn caps a level's dense count at uint32 max / 2
MAX_LEVELS = 32


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class HashGridLayout:
    n_input_dims: int
    n_levels: int
    n_features_per_level: int
    log2_hashmap_size: int
    base_resolution: int
    per_level_scale: float
    interpolation: str
    grid_type: str
    scales: tuple  # float32 values, as Python floats
    resolutions: tuple
    offsets: tuple  # entry offset of each level, n_levels + 1 values
    hashed: tuple

    @classmethod
    def build(
        cls,
        n_input_dims: int = 3,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float = 2.0,
        interpolation: str = "linear",
        grid_type: str = "hash",
    ) -> "HashGridLayout":
        n_input_dims = _positive_int("n_input_dims", n_input_dims)
        if n_input_dims > 3:
            raise ValueError(f"n_input_dims must be 1, 2 or 3, got {n_input_dims}")
        n_levels = _positive_int("n_levels", n_levels)
        if n_levels > MAX_LEVELS:
            raise ValueError(f"n_levels must be at most {MAX_LEVELS} (tiny-cuda-nn's limit), got {n_levels}")
        n_features_per_level = _positive_int("n_features_per_level", n_features_per_level)
        if n_features_per_level not in (1, 2, 4, 8):
            raise ValueError(f"n_features_per_level must be 1, 2, 4 or 8, got {n_features_per_level}")
        log2_hashmap_size = _positive_int("log2_hashmap_size", log2_hashmap_size)
        if log2_hashmap_size > 31:
            raise ValueError(f"log2_hashmap_size must be at most 31, got {log2_hashmap_size}")
        base_resolution = _positive_int("base_resolution", base_resolution)
        if not isinstance(per_level_scale, (int, float)) or not math.isfinite(per_level_scale) or per_level_scale <= 0:
            raise ValueError(f"per_level_scale must be a positive number, got {per_level_scale!r}")
        interpolation = str(interpolation).lower()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        grid_type = str(grid_type).lower()
        if grid_type not in GRID_TYPES:
            raise ValueError(f"grid_type must be one of {GRID_TYPES}, got {grid_type!r}")

        f32 = np.float32
        log2_scale = np.log2(f32(per_level_scale))
        scales, resolutions, offsets, hashed = [], [], [0], []
        for level in range(n_levels):
            scale = f32(np.exp2(f32(level) * log2_scale) * f32(base_resolution) - f32(1.0))
            resolution = int(math.ceil(float(scale))) + 1
            dense = resolution**n_input_dims
            params = min(dense, _TCNN_MAX_PARAMS)
            params = (params + 7) // 8 * 8
            if grid_type == "hash":
                params = min(params, 1 << log2_hashmap_size)
            if offsets[-1] + params > 0xFFFFFFFF:
                raise ValueError("the grid has more than 2^32 entries")
            scales.append(float(scale))
            resolutions.append(resolution)
            offsets.append(offsets[-1] + params)
            hashed.append(dense > params)
        return cls(
            n_input_dims, n_levels, n_features_per_level, log2_hashmap_size, base_resolution,
            float(per_level_scale), interpolation, grid_type, tuple(scales), tuple(resolutions),
            tuple(offsets), tuple(hashed),
        )

    @property
    def sizes(self) -> tuple:
        """Entries per level (each entry holds n_features_per_level values)."""
        return tuple(b - a for a, b in zip(self.offsets[:-1], self.offsets[1:]))

    @property
    def n_params(self) -> int:
        return self.offsets[-1] * self.n_features_per_level

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def kwargs(self) -> dict:
        """The arguments that rebuild this layout (``hashgrid_encode``'s options)."""
        return dict(
            n_levels=self.n_levels,
            n_features_per_level=self.n_features_per_level,
            log2_hashmap_size=self.log2_hashmap_size,
            base_resolution=self.base_resolution,
            per_level_scale=self.per_level_scale,
            interpolation=self.interpolation,
            grid_type=self.grid_type,
        )


def check_encode_inputs(name: str, x, params, layout_kwargs: dict, fused_dtypes):
    """Validate (x, params) of hashgrid_encode; return (x2d, layout, leading shape)."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x must be a tensor, got {type(x).__name__}")
    if not isinstance(params, torch.Tensor):
        raise TypeError(f"{name}: params must be a tensor, got {type(params).__name__}")
    if x.dtype not in fused_dtypes:
        raise TypeError(f"{name}: x must be float32 or float64, got {x.dtype}")
    if params.dtype != x.dtype:
        raise TypeError(f"{name}: params ({params.dtype}) and x ({x.dtype}) must share a dtype")
    if x.dim() < 1 or x.shape[-1] not in (1, 2, 3):
        raise ValueError(f"{name}: x must be (..., D) with D in 1..3, got shape {tuple(x.shape)}")
    if params.dim() != 1:
        raise ValueError(f"{name}: params must be 1-D (tiny-cuda-nn's flat layout), got shape {tuple(params.shape)}")
    if params.device != x.device:
        raise ValueError(f"{name}: params on {params.device} but x on {x.device}")
    layout = HashGridLayout.build(n_input_dims=x.shape[-1], **layout_kwargs)
    if params.numel() != layout.n_params:
        raise ValueError(
            f"{name}: params has {params.numel()} values but this grid needs {layout.n_params} "
            f"({layout.offsets[-1]} entries x {layout.n_features_per_level} features)"
        )
    # A finite sum proves every coordinate finite at the cost of one read (an
    # elementwise isfinite costs a third of the encoding); only a non-finite
    # sum (NaN/inf, or huge values overflowing) takes the exact test.
    if x.numel() and not bool(torch.isfinite(x.sum())):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name}: x holds NaN or infinite coordinates")
    return x.reshape(-1, x.shape[-1]), layout, tuple(x.shape[:-1])
