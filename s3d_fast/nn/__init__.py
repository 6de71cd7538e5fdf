"""Modules over the fused ops."""
from .triplane import TriPlane  # noqa: F401
from .occupancy_grid import OccupancyGrid  # noqa: F401,E402
