"""Modules over the fused ops."""
from .triplane import TriPlane  # noqa: F401
from .hashgrid import HashGrid  # noqa: F401,E402
