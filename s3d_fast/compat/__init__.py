"""Drop-ins for other NeRF code: tiny-cuda-nn's and nerfacc's Python APIs on s3d-fast's
kernels (``s3d_fast.compat.tinycudann``, ``s3d_fast.compat.nerfacc``), on a CPU as on a GPU."""

from .install import install

__all__ = ["install"]
