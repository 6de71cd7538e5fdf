"""Learnable multi-resolution hash grid, drop-in for tiny-cuda-nn's HashGrid encoding."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import hashgrid_encode
from ..ops.hashgrid_config import HashGridConfig

BACKENDS = ("auto", "s3d", "tcnn")


def _tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA install raising on import
        return False
    return True


class HashGrid(nn.Module):
    """Instant-NGP multi-resolution hash encoding with tiny-cuda-nn's semantics.

    ``forward(x)`` maps (..., n_input_dims) positions in [0, 1] to
    (..., n_levels * n_features_per_level) features (level-major). The table
    is ``params``, a flat 1-D parameter in tiny-cuda-nn's layout (level, entry,
    feature), initialised uniform(-1e-4, 1e-4) like tiny-cuda-nn, so a table
    trained by either evaluates identically in the other. Per-level
    ``offsets``, ``sizes`` (entries), ``resolutions`` and ``scales`` describe it.

    backend: ``s3d`` (the fused kernels, CPU and CUDA), ``tcnn`` (tinycudann,
    CUDA only, float32 table) or ``auto``: tcnn for CUDA inputs where it is
    importable, s3d otherwise.
    """

    def __init__(
        self,
        n_input_dims: int = 3,
        *fields,
        config: HashGridConfig | None = None,
        backend: str = "auto",
        dtype: torch.dtype = torch.float32,
        device=None,
        **options,
    ):
        """``fields`` and ``options``: :class:`HashGridConfig`'s fields, positional
        (n_levels, n_features_per_level, log2_hashmap_size, ...) or by keyword;
        or a ``config`` instead of them."""
        super().__init__()
        if config is None:
            config = HashGridConfig(*fields, **options)
        elif fields or options:
            raise TypeError("give a config or the grid's fields, not both")
        self.config = HashGridConfig.coerce(config, {})
        self.layout = self.config.layout(n_input_dims)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.backend = backend
        self.params = nn.Parameter(torch.empty(self.layout.n_params, dtype=dtype, device=device).uniform_(-1e-4, 1e-4))
        self._tcnn = None  # built on first tcnn call; not a submodule (it shares `params`)

    @classmethod
    def from_tcnn_config(cls, n_input_dims: int, config: dict, **kwargs) -> HashGrid:
        """Build from a tiny-cuda-nn encoding config
        (``{"otype": "HashGrid" | "Grid" | "DenseGrid", ...}``), with tcnn's defaults."""
        return cls(n_input_dims, config=HashGridConfig.from_tcnn(config), **kwargs)

    def tcnn_config(self) -> dict:
        """The tiny-cuda-nn encoding config of this grid."""
        return self.config.to_tcnn()

    @property
    def n_input_dims(self) -> int:
        return self.layout.n_input_dims

    @property
    def n_output_dims(self) -> int:
        return self.layout.n_output_dims

    @property
    def offsets(self) -> tuple:
        """First entry of each level, plus the total (multiply by F for params indices)."""
        return self.layout.offsets

    @property
    def sizes(self) -> tuple:
        return self.layout.sizes

    @property
    def resolutions(self) -> tuple:
        return self.layout.resolutions

    @property
    def scales(self) -> tuple:
        return self.layout.scales

    def level_params(self, level: int) -> torch.Tensor:
        """A (entries, F) view of one level's slice of ``params``."""
        lay = self.layout
        f = self.config.n_features_per_level
        return self.params[lay.offsets[level] * f : lay.offsets[level + 1] * f].view(-1, f)

    def _use_tcnn(self, x: torch.Tensor) -> bool:
        if self.backend == "s3d":
            return False
        usable = x.is_cuda and self.params.dtype == torch.float32 and _tcnn_available()
        if self.backend == "tcnn" and not usable:
            raise ValueError("backend='tcnn' needs tinycudann installed, CUDA tensors and a float32 table")
        return usable

    def _tcnn_forward(self, x: torch.Tensor) -> torch.Tensor:
        import tinycudann as tcnn

        if self._tcnn is None:
            enc = tcnn.Encoding(self.n_input_dims, self.tcnn_config(), dtype=torch.float32)
            object.__setattr__(self, "_tcnn", enc)
        enc = self._tcnn
        enc.params = self.params  # share our table: tcnn reads the same flat layout
        lead = x.shape[:-1]
        out = enc(x.reshape(-1, self.n_input_dims))
        return out.float().view(*lead, self.n_output_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"HashGrid: x must be a tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.n_input_dims:
            raise ValueError(f"HashGrid: x must be (..., {self.n_input_dims}), got shape {tuple(x.shape)}")
        if self._use_tcnn(x):
            return self._tcnn_forward(x)
        return hashgrid_encode(x, self.params, self.config)

    def extra_repr(self) -> str:
        cfg, lay = self.config, self.layout
        dense = sum(not h for h in lay.hashed)
        return (
            f"n_input_dims={lay.n_input_dims}, n_levels={cfg.n_levels}, F={cfg.n_features_per_level}, "
            f"log2_hashmap_size={cfg.log2_hashmap_size}, base_resolution={cfg.base_resolution}, "
            f"per_level_scale={cfg.per_level_scale}, interpolation={cfg.interpolation}, "
            f"dense_levels={dense}, params={lay.n_params}, backend={self.backend}"
        )
