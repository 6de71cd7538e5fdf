"""Fused occupancy-grid ray marching (the kernel under ``nn.OccupancyGrid.sampling``).

``occgrid_march`` walks every ray through a batch of bitfield grids and
returns the packed samples: the steps t0 + k*dt (growing with t when
``cone_angle`` > 0) whose midpoint lies in an occupied cell of the ray's grid,
before min(t_far, exit of the coarsest box). Empty cells are skipped whole.
Two passes on the device: count samples per ray, exclusive scan, fill.
Rays with NaN or infinite origins, directions or t_near give no samples; a
NaN t_far means no far bound (docs/kernels/marching-and-compositing.md).
"""

from __future__ import annotations

import math

import torch

from .. import _ext
from ._half import is_half, narrow, widen
from ._packed import check_float, check_like

MAX_RESOLUTION = 1 << 20  # cells per side (the binding's limit)


def pack_bits(binaries: torch.Tensor) -> torch.Tensor:
    """(n_grids, levels, rx, ry, rz) bool -> (n_grids, levels, ceil(cells / 8)) uint8.

    Bit c % 8 of byte c // 8 is cell c = (x * ry + y) * rz + z.
    """
    n_grids, levels = binaries.shape[:2]
    flat = binaries.reshape(n_grids, levels, -1).to(torch.uint8)
    cells = flat.shape[-1]
    pad = (-cells) % 8
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    weights = (1 << torch.arange(8, device=flat.device, dtype=torch.int32)).to(torch.uint8)
    return (flat.view(n_grids, levels, -1, 8) * weights).sum(-1, dtype=torch.uint8).contiguous()


def unpack_bits(bits: torch.Tensor, resolution) -> torch.Tensor:
    """Inverse of :func:`pack_bits`."""
    n_grids, levels = bits.shape[:2]
    shifts = torch.arange(8, device=bits.device, dtype=torch.uint8)
    flat = ((bits.unsqueeze(-1) >> shifts) & 1).bool().reshape(n_grids, levels, -1)
    cells = int(resolution[0]) * int(resolution[1]) * int(resolution[2])
    return flat[..., :cells].reshape(n_grids, levels, *[int(r) for r in resolution])


BLOCK = 8  # cells per side of a coarse block (s3d::occupancy::kBlock)


def block_bits_of(binaries: torch.Tensor) -> torch.Tensor:
    """Bitfield of BLOCK^3 blocks holding any occupied cell (lets the marcher
    skip large empty regions in one jump)."""
    n_grids, levels = binaries.shape[:2]
    pooled = torch.nn.functional.max_pool3d(
        binaries.reshape(n_grids * levels, 1, *binaries.shape[2:]).float(), BLOCK, stride=BLOCK, ceil_mode=True
    )
    return pack_bits(pooled.reshape(n_grids, levels, *pooled.shape[2:]) > 0)


def occgrid_march(
    bits,
    resolution,
    roi_aabb,
    rays_o,
    rays_d,
    t_near,
    t_far,
    step_size,
    cone_angle=0.0,
    grid_indices=None,
    block_bits=None,
):
    """March rays through bitfield grids.

    Args:
        bits: (n_grids, levels, bytes) uint8 from :func:`pack_bits`.
        resolution: 3 ints; roi_aabb: 6 numbers (min xyz, max xyz) of level 0.
        rays_o, rays_d: (R, 3); t_near, t_far: (R,) per-ray bounds (the step
            lattice starts at t_near).
        grid_indices: (R,) the grid of each ray (None: grid 0).
        block_bits: optional :func:`block_bits_of` of the same grid (faster).

    Returns:
        (ray_indices (S,) int64, t_starts (S,), t_ends (S,), offsets (R + 1,) int64),
        sorted by ray then t.
    """
    op = "occgrid_march"
    if is_half(rays_o):
        names = ("rays_o", "rays_d", "t_near", "t_far")
        rays = widen(op, names, (rays_o, rays_d, t_near, t_far))
        ray_indices, t_starts, t_ends, offsets = occgrid_march(
            bits, resolution, roi_aabb, *rays, step_size, cone_angle, grid_indices, block_bits
        )
        return ray_indices, narrow(t_starts, rays_o.dtype), narrow(t_ends, rays_o.dtype), offsets
    check_float("rays_o", rays_o, op)
    if rays_o.dim() != 2 or rays_o.shape[-1] != 3:
        raise ValueError(f"{op}: rays_o must be (R, 3), got {tuple(rays_o.shape)}")
    check_like("rays_d", rays_d, rays_o, "rays_o", op)
    n = rays_o.shape[0]
    check_like("t_near", t_near, rays_o, "rays_o", op, shape=(n,))
    check_like("t_far", t_far, rays_o, "rays_o", op, shape=(n,))
    if not isinstance(bits, torch.Tensor) or bits.dtype != torch.uint8 or bits.dim() != 3:
        raise TypeError(f"{op}: bits must be a (n_grids, levels, bytes) uint8 tensor")
    if bits.shape[0] < 1 or bits.shape[1] < 1:
        raise ValueError(f"{op}: bits must hold at least one grid and one level, got {tuple(bits.shape)}")
    resolution = _resolution(op, resolution)
    cells = resolution[0] * resolution[1] * resolution[2]
    if bits.shape[2] * 8 < cells:
        raise ValueError(f"{op}: bits has {bits.shape[2]} bytes per level, too few for resolution {resolution}")
    if bits.device != rays_o.device:
        raise ValueError(f"{op}: the grid is on {bits.device} but the rays are on {rays_o.device}")
    if grid_indices is not None:
        if not isinstance(grid_indices, torch.Tensor) or grid_indices.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"{op}: grid_indices must be an int tensor")
        if grid_indices.shape != (n,):
            raise ValueError(f"{op}: grid_indices must be (R,) = ({n},), got {tuple(grid_indices.shape)}")
        if grid_indices.device != rays_o.device:
            raise ValueError(f"{op}: grid_indices is on {grid_indices.device} but the rays are on {rays_o.device}")
        if n and (int(grid_indices.min()) < 0 or int(grid_indices.max()) >= bits.shape[0]):
            raise ValueError(f"{op}: grid_indices must lie in [0, n_grids={bits.shape[0]})")
        grid_indices = grid_indices.long().contiguous()
    step_size = _number(op, "render_step_size", step_size)
    if not step_size > 0:
        raise ValueError(f"{op}: render_step_size must be > 0, got {step_size}")
    cone_angle = _number(op, "cone_angle", cone_angle)
    if not cone_angle >= 0:
        raise ValueError(f"{op}: cone_angle must be >= 0, got {cone_angle}")
    try:
        aabb = [float(v) for v in roi_aabb]
    except (TypeError, ValueError):
        raise ValueError(f"{op}: roi_aabb must be 6 numbers, got {roi_aabb!r}") from None
    if len(aabb) != 6 or not all(math.isfinite(v) for v in aabb) or not all(a < b for a, b in zip(aabb, aabb[3:])):
        raise ValueError(f"{op}: roi_aabb must be 6 finite numbers (min xyz, max xyz) with min < max, got {roi_aabb!r}")
    lo, hi = aabb[:3], aabb[3:]
    center = [(a + b) / 2 for a, b in zip(lo, hi)]
    half = [(b - a) / 2 for a, b in zip(lo, hi)]
    if block_bits is not None:
        if not isinstance(block_bits, torch.Tensor) or block_bits.dtype != torch.uint8:
            raise TypeError(f"{op}: block_bits must be a uint8 tensor (block_bits_of)")
        if block_bits.device != bits.device:
            raise ValueError(f"{op}: block_bits is on {block_bits.device} but the grid is on {bits.device}")
        blocks = math.prod(-(-r // BLOCK) for r in resolution)
        if block_bits.dim() != 3 or block_bits.shape[:2] != bits.shape[:2] or block_bits.shape[2] * 8 < blocks:
            raise ValueError(
                f"{op}: block_bits must be ({bits.shape[0]}, {bits.shape[1]}, >= {-(-blocks // 8)}) "
                f"(block_bits_of the same grid), got {tuple(block_bits.shape)}"
            )
        block_bits = block_bits.contiguous()
    return _ext.load().occgrid_march(
        bits.contiguous(),
        block_bits,
        list(resolution),
        center,
        half,
        rays_o.contiguous(),
        rays_d.contiguous(),
        grid_indices,
        t_near.contiguous(),
        t_far.contiguous(),
        float(step_size),
        float(cone_angle),
        False,  # grid_indices are checked above; the binding's check would sync the GPU
    )


def _number(op: str, name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{op}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{op}: {name} must be finite, got {number}")
    return number


def _resolution(op: str, resolution) -> tuple:
    """Three ints in [1, MAX_RESOLUTION]."""
    try:
        values = [int(r) for r in resolution]
        exact = all(int(r) == r for r in resolution)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: resolution must be 3 ints, got {resolution!r}") from None
    if len(values) != 3 or not exact or not all(1 <= r <= MAX_RESOLUTION for r in values):
        raise ValueError(f"{op}: resolution must be 3 ints in [1, {MAX_RESOLUTION}], got {resolution!r}")
    return tuple(values)
