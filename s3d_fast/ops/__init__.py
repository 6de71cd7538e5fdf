"""Fused ops (autograd-aware) over the s3d_fast extension; ``reference`` holds
the pure-PyTorch versions with the same signatures."""
from . import reference  # noqa: F401
from .hashgrid import hashgrid_encode  # noqa: F401
from .hashgrid_config import HashGridConfig  # noqa: F401
from .occupancy_grid import occgrid_march, pack_bits, unpack_bits  # noqa: F401
from .triplane import triplane_sample  # noqa: F401
from .volume_render import (  # noqa: F401
    accumulate_along_rays,
    composite,
    render_weight_from_alpha,
    render_weight_from_density,
)

__all__ = [
    "reference",
    "triplane_sample",
    "hashgrid_encode",
    "HashGridConfig",
    "render_weight_from_density",
    "render_weight_from_alpha",
    "accumulate_along_rays",
    "composite",
    "occgrid_march",
    "pack_bits",
    "unpack_bits",
]
