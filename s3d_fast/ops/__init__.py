"""Fused ops (autograd-aware) over the s3d_fast extension; ``reference`` holds
the pure-PyTorch versions with the same signatures."""
from . import reference  # noqa: F401
from .triplane import triplane_sample  # noqa: F401

__all__ = ["triplane_sample", "reference"]
from .volume_render import (  # noqa: F401,E402
    accumulate_along_rays,
    composite,
    render_weight_from_alpha,
    render_weight_from_density,
)

__all__ += ["render_weight_from_density", "render_weight_from_alpha", "accumulate_along_rays", "composite"]
from .occupancy_grid import occgrid_march, pack_bits, unpack_bits  # noqa: F401,E402

__all__ += ["occgrid_march", "pack_bits", "unpack_bits"]
