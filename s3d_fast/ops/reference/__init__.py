"""Pure-PyTorch references of the fused ops: the semantics, readable and slow.

Tests compare the fused kernels against these; benchmarks run them side by side.
"""

from .hashgrid import hashgrid_encode  # noqa: F401
from .mlp_chain import mlp  # noqa: F401
from .occupancy_grid import grid_occupied, occgrid_march  # noqa: F401
from .triplane import triplane_sample  # noqa: F401
from .volume_render import (  # noqa: F401
    accumulate_along_rays,
    composite,
    render_weight_from_alpha,
    render_weight_from_density,
)
