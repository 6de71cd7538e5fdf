"""Fused ops (autograd-aware) over the s3d_fast extension; ``reference`` holds
the pure-PyTorch versions with the same signatures."""
from . import reference  # noqa: F401
from .triplane import triplane_sample  # noqa: F401

__all__ = ["triplane_sample", "reference"]
from .hashgrid import hashgrid_encode  # noqa: F401,E402

__all__ += ["hashgrid_encode"]
