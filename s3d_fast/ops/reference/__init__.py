"""Pure-PyTorch references of the fused ops: the semantics, readable and slow.

Tests compare the fused kernels against these; benchmarks run them side by side.
"""
from .triplane import triplane_sample  # noqa: F401
from .hashgrid import hashgrid_encode  # noqa: F401,E402
