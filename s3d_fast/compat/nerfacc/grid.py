"""nerfacc.grid: ray-box intersection and ray traversal through binary grids.

``traverse_grids`` on grids nested as nerfacc's estimator builds them (each box the
first scaled by 2^l about its centre) runs s3d-fast's fused marcher, which skips
empty cells and 8^3 blocks; the steps are those of nerfacc's walk, ``near + k *
step_size`` (growing with ``cone_angle``) whose midpoint lies in an occupied cell of
the finest grid holding it.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ...ops.occupancy_grid import block_bits_of, occgrid_march, pack_bits
from ._segments import packed_info_of
from .data_specs import RayIntervals, RaySamples


@torch.no_grad()
def ray_aabb_intersect(
    rays_o: Tensor,
    rays_d: Tensor,
    aabbs: Tensor,
    near_plane: float = -float("inf"),
    far_plane: float = float("inf"),
    miss_value: float = float("inf"),
) -> tuple[Tensor, Tensor, Tensor]:
    """(t_mins, t_maxs, hits), each (n_rays, m), of every ray against every box
    (m, 6). A ray hits a box when its slabs overlap and the box is not behind it
    (t_max > 0); hit t values are clamped to the near / far planes, misses are
    ``miss_value``."""
    if rays_o.dim() != 2 or rays_o.shape[-1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError("ray_aabb_intersect: rays_o and rays_d must be (n_rays, 3)")
    if aabbs.dim() != 2 or aabbs.shape[-1] != 6:
        raise ValueError(f"ray_aabb_intersect: aabbs must be (m, 6), got {tuple(aabbs.shape)}")
    aabbs = aabbs.to(rays_o)
    inv = 1.0 / rays_d[:, None, :]
    ta = (aabbs[None, :, :3] - rays_o[:, None, :]) * inv
    tb = (aabbs[None, :, 3:] - rays_o[:, None, :]) * inv
    t_mins = torch.minimum(ta, tb).amax(-1)
    t_maxs = torch.maximum(ta, tb).amin(-1)
    hits = (t_mins <= t_maxs) & (t_maxs > 0)
    t_mins = torch.clamp(t_mins, min=near_plane)
    t_maxs = torch.clamp(t_maxs, max=far_plane)
    miss = torch.full_like(t_mins, miss_value)
    return torch.where(hits, t_mins, miss), torch.where(hits, t_maxs, miss), hits


def _nested(aabbs: Tensor) -> bool:
    """Whether box l is box 0 scaled by 2^l about its centre (an estimator's levels)."""
    lo, hi = aabbs[0, :3], aabbs[0, 3:]
    center, half = (lo + hi) / 2, (hi - lo) / 2
    scale = 2.0 ** torch.arange(aabbs.shape[0], dtype=aabbs.dtype, device=aabbs.device)[:, None]
    want = torch.cat([center - half * scale, center + half * scale], -1)
    return bool((half > 0).all()) and torch.allclose(aabbs, want, rtol=1e-6, atol=1e-6)


def intervals_of_samples(ray_indices: Tensor, t_starts: Tensor, t_ends: Tensor, n_rays: int) -> RayIntervals:
    """Packed interval edges of sorted samples: touching samples share an edge
    (right of one, left of the next), as nerfacc's traversal writes them."""
    n = t_starts.numel()
    same_ray = torch.zeros(n, dtype=torch.bool, device=t_starts.device)
    if n > 1:
        same_ray[1:] = (ray_indices[1:] == ray_indices[:-1]) & (t_starts[1:] == t_ends[:-1])
    new_run = ~same_ray
    per_sample = 1 + new_run.long()
    first = torch.cumsum(per_sample, 0) - per_sample  # where each sample's edges begin
    n_edges = int(per_sample.sum())
    vals = t_starts.new_empty(n_edges)
    rays = ray_indices.new_empty(n_edges)
    is_left = torch.zeros(n_edges, dtype=torch.bool, device=t_starts.device)
    is_right = torch.zeros_like(is_left)
    left_at = first[new_run]
    vals[left_at], rays[left_at], is_left[left_at] = t_starts[new_run], ray_indices[new_run], True
    right_at = first + new_run.long()
    vals[right_at], rays[right_at], is_right[right_at] = t_ends, ray_indices, True
    continued = torch.zeros_like(same_ray)
    continued[:-1] = same_ray[1:]  # the next sample starts where this one ends
    is_left[right_at[continued]] = True
    return RayIntervals(vals, packed_info_of(rays, n_rays), rays, is_left, is_right)


@torch.no_grad()
def traverse_grids(
    rays_o: Tensor,
    rays_d: Tensor,
    binaries: Tensor,
    aabbs: Tensor,
    near_planes: Optional[Tensor] = None,
    far_planes: Optional[Tensor] = None,
    step_size: Optional[float] = 1e-3,
    cone_angle: Optional[float] = 0.0,
    traverse_steps_limit: Optional[int] = None,
    over_allocate: Optional[bool] = False,
    rays_mask: Optional[Tensor] = None,
    t_sorted: Optional[Tensor] = None,
    t_indices: Optional[Tensor] = None,
    hits: Optional[Tensor] = None,
) -> tuple[RayIntervals, RaySamples, Tensor]:
    """Walk rays through binary grids (m, rx, ry, rz) in boxes (m, 6).

    Returns the packed intervals (edges), the samples (interval midpoints) and
    each ray's termination plane: where its walk ends, min(far plane, exit of the
    outermost box) (its near plane when it misses every box). The precomputed
    intersections (``t_sorted``, ``t_indices``, ``hits``) are accepted and not
    needed. Supported: nested boxes (box l = box 0 scaled by 2^l), ``step_size``
    > 0, no ``traverse_steps_limit``.
    """
    if binaries.dim() != 4 or aabbs.dim() != 2 or aabbs.shape != (binaries.shape[0], 6):
        raise ValueError("traverse_grids: binaries must be (m, rx, ry, rz) and aabbs (m, 6)")
    if step_size is None or not step_size > 0:
        raise NotImplementedError("traverse_grids: step_size <= 0 (one sample per cell) is not supported here")
    if (traverse_steps_limit is not None and traverse_steps_limit > 0) or over_allocate:
        raise NotImplementedError("traverse_grids: traverse_steps_limit / over_allocate are not supported here")
    aabbs = aabbs.to(device=rays_o.device, dtype=torch.float32)
    if not _nested(aabbs):
        raise NotImplementedError(
            "traverse_grids: only nested boxes are supported (box l = box 0 scaled by 2^l about its centre, "
            "as OccGridEstimator makes them)"
        )
    n = rays_o.shape[0]
    near = torch.zeros(n, dtype=rays_o.dtype, device=rays_o.device) if near_planes is None else near_planes
    far = torch.full_like(near, float("inf")) if far_planes is None else far_planes
    near, far = near.to(rays_o).contiguous(), far.to(rays_o).contiguous()
    if rays_mask is not None:
        far = torch.where(rays_mask.to(near.device).bool(), far, near)  # an empty span: no samples
    grids = binaries.to(rays_o.device).bool()[None]
    ray_indices, t_starts, t_ends, offsets = occgrid_march(
        pack_bits(grids),
        binaries.shape[1:],
        aabbs[0].tolist(),
        rays_o,
        rays_d,
        near,
        far,
        float(step_size),
        float(cone_angle or 0.0),
        None,
        block_bits_of(grids),
    )
    intervals = intervals_of_samples(ray_indices, t_starts, t_ends, n)
    counts = offsets[1:] - offsets[:-1]
    samples = RaySamples(
        vals=(t_starts + t_ends) * 0.5,
        packed_info=torch.stack([offsets[:-1], counts], -1),
        ray_indices=ray_indices,
        is_valid=torch.ones_like(ray_indices, dtype=torch.bool),
    )
    _, t_exit, hit = ray_aabb_intersect(rays_o, rays_d, aabbs[-1:])
    ends = torch.where(hit[:, 0], torch.minimum(t_exit[:, 0], far), near)
    return intervals, samples, torch.maximum(ends, near)
