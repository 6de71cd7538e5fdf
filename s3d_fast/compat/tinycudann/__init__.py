"""tiny-cuda-nn's PyTorch API (``import tinycudann as tcnn``) on s3d-fast's kernels, on a
CPU as on a GPU: ``Encoding``, ``Network``, ``NetworkWithInputEncoding`` with tcnn's
configs and flat parameter layout, so code and parameters written for tiny-cuda-nn run
unchanged. What is supported and where behaviour differs: docs/compat.md."""

from .modules import Encoding, Network, NetworkWithInputEncoding

# The tiny-cuda-nn release whose API and layouts this follows, marked as this drop-in.
__version__ = "2.0+s3d_fast"


def free_temporary_memory() -> None:
    """tcnn frees its cached GPU scratch memory here; nothing is cached here."""


def supports_jit_fusion() -> bool:
    """No runtime-compiled kernel fusion here (tcnn's JIT needs NVRTC and a GPU)."""
    return False


__all__ = [
    "Encoding",
    "Network",
    "NetworkWithInputEncoding",
    "free_temporary_memory",
    "supports_jit_fusion",
    "__version__",
]
