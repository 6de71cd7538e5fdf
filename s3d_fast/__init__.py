"""s3d_fast: one-shot speech-driven talking-head NeRF on fused CPU/CUDA kernels."""
__version__ = "0.1.0"

from .errors import S3DError  # noqa: F401
