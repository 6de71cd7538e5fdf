"""Modules over the fused ops."""
from .hashgrid import HashGrid  # noqa: F401
from .occupancy_grid import OccupancyGrid  # noqa: F401
from .triplane import TriPlane  # noqa: F401

__all__ = ["HashGrid", "OccupancyGrid", "TriPlane"]
