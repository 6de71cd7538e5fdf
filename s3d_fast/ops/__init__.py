"""Fused ops (autograd-aware) over the s3d_fast extension; ``reference`` holds
the pure-PyTorch versions with the same signatures."""

from . import reference
from .hashgrid import hashgrid_encode
from .hashgrid_config import HashGridConfig
from .mlp_op import mlp
from .occupancy_grid import occgrid_march, pack_bits, unpack_bits
from .triplane import triplane_sample
from .volume_render import (
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
    "mlp",
    "occgrid_march",
    "pack_bits",
    "unpack_bits",
]
