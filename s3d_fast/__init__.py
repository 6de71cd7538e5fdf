"""s3d_fast: one-shot speech-driven talking-head NeRF on fused CPU/CUDA kernels."""

from .errors import S3DError
from .version import __version__

__all__ = ["S3DError", "__version__", "Renderer", "Identity"]


def __getattr__(name):
    # The renderer needs torch; ``import s3d_fast`` (and ``s3d-fast --help``) must not.
    if name in ("Renderer", "Identity"):
        from .render import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
