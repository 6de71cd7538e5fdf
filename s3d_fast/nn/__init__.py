"""Modules over the fused ops."""

from .hashgrid import HashGrid
from .occupancy_grid import OccupancyGrid
from .triplane import TriPlane

__all__ = ["HashGrid", "OccupancyGrid", "TriPlane"]
