"""An encoding config to its implementation, by ``otype`` (case-insensitive, tcnn's
default ``OneBlob``)."""

from __future__ import annotations

from .composite import CompositeSpec
from .encoding_base import EncodingSpec
from .frequency import FrequencySpec
from .grid import GridSpec
from .identity import IdentitySpec
from .oneblob import OneBlobSpec
from .spherical_harmonics import SphericalHarmonicsSpec
from .triangle_wave import TriangleWaveSpec

_SPECS = {
    "frequency": FrequencySpec,
    "grid": GridSpec,
    "hashgrid": GridSpec,
    "densegrid": GridSpec,
    "tiledgrid": GridSpec,
    "identity": IdentitySpec,
    "oneblob": OneBlobSpec,
    "sphericalharmonics": SphericalHarmonicsSpec,
    "trianglewave": TriangleWaveSpec,
}
SUPPORTED = (
    "Composite, Frequency, Grid, HashGrid, DenseGrid, TiledGrid, Identity, OneBlob, SphericalHarmonics, TriangleWave"
)


def make_encoding(n_input_dims: int, config: dict) -> EncodingSpec:
    if not isinstance(config, dict):
        raise TypeError(f"tinycudann encoding config must be a dict, got {type(config).__name__}")
    otype = str(config.get("otype", "OneBlob"))
    if otype.lower() == "composite":
        return CompositeSpec(n_input_dims, config, make_encoding)
    spec = _SPECS.get(otype.lower())
    if spec is None:
        raise ValueError(f"s3d_fast.compat.tinycudann: encoding otype {otype!r} is not supported ({SUPPORTED})")
    return spec(n_input_dims, config)
