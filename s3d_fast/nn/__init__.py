"""Modules over the fused ops."""
from .triplane import TriPlane  # noqa: F401
