"""s3d_fast: one-shot speech-driven talking-head NeRF on fused CPU/CUDA kernels."""
__version__ = "0.1.0"

from .errors import S3DError  # noqa: F401


def __getattr__(name):
    # The renderer needs torch; ``import s3d_fast`` (and ``s3d-fast --help``) must not.
    if name in ("Renderer", "Identity"):
        from .render import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
