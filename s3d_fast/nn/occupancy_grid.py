"""A batch of occupancy grids with nerfacc's ``OccGridEstimator`` interface.

One grid per identity in a batch (a one-shot model has no single scene):
``n_grids`` independent grids, each ``levels`` nested boxes (level l is the
ROI box scaled by 2^l about its centre) of ``resolution`` cells. The float
occupancies are kept for the EMA update; the binary grid lives as a bitfield
(1 bit per cell) that the fused marcher reads.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..ops import render_weight_from_alpha
from ..ops._packed import check_float
from ..ops.occupancy_grid import block_bits_of, occgrid_march, pack_bits, unpack_bits


def _resolution(resolution):
    if isinstance(resolution, int):
        resolution = [resolution] * 3
    resolution = [int(r) for r in resolution]
    if len(resolution) != 3 or min(resolution) < 1:
        raise ValueError(f"OccupancyGrid: resolution must be a positive int or 3 of them, got {resolution}")
    return resolution


class OccupancyGrid(nn.Module):
    """Occupancy grids for empty-space skipping (drop-in for nerfacc's OccGridEstimator).

    Args:
        roi_aabb: (6,) min xyz, max xyz of the finest level.
        resolution: cells per axis (int or 3 ints).
        levels: nested levels; level l covers roi_aabb scaled by 2^l.
        n_grids: independent grids (e.g. one per identity); rays name theirs
            with ``grid_indices``.
    """

    def __init__(self, roi_aabb, resolution=128, levels: int = 1, n_grids: int = 1):
        super().__init__()
        roi = torch.as_tensor(roi_aabb, dtype=torch.float32).flatten()
        if roi.numel() != 6 or not bool((roi[3:] > roi[:3]).all()):
            raise ValueError(f"OccupancyGrid: roi_aabb must be 6 numbers with max > min, got {roi.tolist()}")
        if int(levels) < 1 or int(levels) > 16:
            raise ValueError(f"OccupancyGrid: levels must be in [1, 16], got {levels}")
        if int(n_grids) < 1:
            raise ValueError(f"OccupancyGrid: n_grids must be >= 1, got {n_grids}")
        self.resolution = _resolution(resolution)
        self.levels, self.n_grids = int(levels), int(n_grids)
        self.cells_per_lvl = self.resolution[0] * self.resolution[1] * self.resolution[2]
        center, half = (roi[:3] + roi[3:]) / 2, (roi[3:] - roi[:3]) / 2
        scales = 2.0 ** torch.arange(self.levels, dtype=torch.float32)[:, None]
        aabbs = torch.cat([center - half * scales, center + half * scales], dim=-1)
        self.register_buffer("roi_aabb", roi)
        self.register_buffer("aabbs", aabbs)  # (levels, 6)
        self.register_buffer("occs", torch.zeros(self.n_grids, self.levels * self.cells_per_lvl))
        empty = torch.zeros(self.n_grids, self.levels, *self.resolution, dtype=torch.bool)
        self.register_buffer("bits", pack_bits(empty))
        self.register_buffer("block_bits", block_bits_of(empty))

    # -- the binary grid -------------------------------------------------------
    @property
    def binaries(self) -> torch.Tensor:
        """(n_grids, levels, rx, ry, rz) bool."""
        return unpack_bits(self.bits, self.resolution)

    def set_binaries(self, binaries: torch.Tensor) -> None:
        want = (self.n_grids, self.levels, *self.resolution)
        if tuple(binaries.shape) != want:
            raise ValueError(f"OccupancyGrid: binaries must be {want}, got {tuple(binaries.shape)}")
        binaries = binaries.to(self.bits.device).bool()
        self.bits = pack_bits(binaries)
        self.block_bits = block_bits_of(binaries)

    def _cell_points(self, indices: torch.Tensor, level: torch.Tensor, jitter: bool) -> torch.Tensor:
        """World positions in cells `indices` (flat) of `level`: jittered or centres."""
        ry, rz = self.resolution[1], self.resolution[2]
        coords = torch.stack([indices // (ry * rz), (indices // rz) % ry, indices % rz], -1).float()
        offset = torch.rand_like(coords) if jitter else torch.full_like(coords, 0.5)
        unit = (coords + offset) / torch.tensor(self.resolution, dtype=torch.float32, device=coords.device)
        box = self.aabbs[level]
        return box[..., :3] + unit * (box[..., 3:] - box[..., :3])

    # -- updates ----------------------------------------------------------------
    @torch.no_grad()
    def update_every_n_steps(
        self,
        step: int,
        occ_eval_fn: Callable,
        occ_thre: float = 1e-2,
        ema_decay: float = 0.95,
        warmup_steps: int = 256,
        n: int = 16,
    ) -> None:
        """nerfacc's rule: every n steps re-evaluate cells (all of them during
        warm-up, then a random quarter plus the occupied ones) at a jittered
        point, occ = max(occ * ema_decay, new), binarise at min(mean, occ_thre).

        ``occ_eval_fn(x (M, 3), grid_indices (M,))`` returns (M,) or (M, 1)
        occupancy values (e.g. density * step size).
        """
        if not self.training:
            raise RuntimeError("OccupancyGrid.update_every_n_steps is for training; call .train() first")
        if step % n == 0:
            self._update(step, occ_eval_fn, occ_thre, ema_decay, warmup_steps)

    def _update(self, step, occ_eval_fn, occ_thre, ema_decay, warmup_steps):
        device = self.occs.device
        G, L, cells = self.n_grids, self.levels, self.cells_per_lvl
        if step < warmup_steps:
            flat = torch.arange(G * L * cells, device=device)
        else:
            per = cells // 4
            rand = torch.randint(cells, (G, L, per), device=device)
            base = (torch.arange(G * L, device=device) * cells).view(G, L, 1)
            occupied = self.binaries.reshape(-1).nonzero(as_tuple=True)[0]
            flat = torch.cat([(rand + base).reshape(-1), occupied])
        grid = flat // (L * cells)
        level = (flat // cells) % L
        idx = flat % cells
        x = self._cell_points(idx, level, jitter=True)
        occ = occ_eval_fn(x, grid)
        occ = occ.reshape(-1).to(self.occs.dtype)
        if occ.numel() != flat.numel():
            raise ValueError(f"OccupancyGrid: occ_eval_fn returned {occ.numel()} values for {flat.numel()} points")
        # Cells drawn twice keep the larger value (deterministic, unlike a plain index_put).
        fresh = torch.full((G * L * cells,), float("-inf"), device=device, dtype=self.occs.dtype)
        fresh.scatter_reduce_(0, flat, occ, reduce="amax")
        occs = self.occs.view(-1)
        touched = torch.isfinite(fresh)
        occs.copy_(torch.where(touched, torch.maximum(occs * ema_decay, fresh), occs))
        self._binarize(occ_thre)

    def _binarize(self, occ_thre):
        thre = torch.clamp(self.occs.mean(dim=1, keepdim=True), max=occ_thre)
        self.set_binaries((self.occs > thre).view(self.n_grids, self.levels, *self.resolution))

    @torch.no_grad()
    def from_density(self, density, threshold: float = 1e-2, dilate: int = 0) -> OccupancyGrid:
        """Bake the grids once: occ = density at each cell centre (``density`` is
        a function (x (M, 3), grid_indices (M,)) -> (M,), or a tensor
        (n_grids, levels, rx, ry, rz); leading singleton dims may be dropped),
        occupied where occ > threshold, then dilated by ``dilate`` cells."""
        G, L, cells = self.n_grids, self.levels, self.cells_per_lvl
        if callable(density):
            flat = torch.arange(G * L * cells, device=self.occs.device)
            x = self._cell_points(flat % cells, (flat // cells) % L, jitter=False)
            values = density(x, flat // (L * cells)).reshape(-1)
        else:
            values = torch.as_tensor(density)
            want = (G, L, *self.resolution)
            if (
                values.dim() < 3
                or tuple(values.shape[-3:]) != tuple(self.resolution)
                or values.numel() != G * L * cells
            ):
                raise ValueError(f"OccupancyGrid.from_density: density must be {want}, got {tuple(values.shape)}")
        if values.numel() != G * L * cells:
            raise ValueError(f"OccupancyGrid.from_density: expected {G * L * cells} values, got {values.numel()}")
        if int(dilate) < 0:
            raise ValueError(f"OccupancyGrid.from_density: dilate must be >= 0, got {dilate}")
        self.occs.copy_(values.reshape(G, L * cells).to(self.occs))
        binaries = (self.occs > threshold).view(G * L, 1, *self.resolution)
        if dilate:
            k = int(dilate)
            binaries = torch.nn.functional.max_pool3d(binaries.float(), 2 * k + 1, stride=1, padding=k) > 0
        self.set_binaries(binaries.view(G, L, *self.resolution))
        return self

    # -- marching ---------------------------------------------------------------
    @torch.no_grad()
    def sampling(
        self,
        rays_o,
        rays_d,
        sigma_fn: Optional[Callable] = None,
        alpha_fn: Optional[Callable] = None,
        near_plane: float = 0.0,
        far_plane: float = 1e10,
        t_min=None,
        t_max=None,
        render_step_size: float = 1e-3,
        early_stop_eps: float = 1e-4,
        alpha_thre: float = 0.0,
        stratified: bool = False,
        cone_angle: float = 0.0,
        grid_indices=None,
    ):
        """Packed samples (ray_indices, t_starts, t_ends), sorted by ray then t.

        As nerfacc's ``OccGridEstimator.sampling``: steps of ``render_step_size``
        (growing as t * cone_angle when that is larger) from each ray's near
        bound, kept where the step's midpoint is in an occupied cell of the
        ray's grid (``grid_indices`` (R,); default grid 0) and before the far
        bound / the grid's box. With ``sigma_fn(t_starts, t_ends, ray_indices)``
        or ``alpha_fn`` the samples with alpha < alpha_thre (capped at the mean
        occupancy of the ray's own grid) and those behind transmittance <
        early_stop_eps are dropped.
        """
        check_float("rays_o", rays_o, "OccupancyGrid.sampling")
        n = rays_o.shape[0] if rays_o.dim() == 2 else -1
        if grid_indices is None and self.n_grids > 1:
            raise ValueError(f"OccupancyGrid.sampling: {self.n_grids} grids; pass grid_indices (R,)")
        if rays_o.dim() != 2 or rays_o.shape[-1] != 3:
            raise ValueError(f"OccupancyGrid.sampling: rays_o must be (R, 3), got {tuple(rays_o.shape)}")
        if rays_o.device != self.bits.device:
            raise ValueError(
                f"OccupancyGrid.sampling: rays are on {rays_o.device} but the grid is on {self.bits.device}"
            )
        opts = dict(dtype=rays_o.dtype, device=rays_o.device)
        near = torch.full((n,), float(near_plane), **opts)
        far = torch.full((n,), float(far_plane), **opts)
        if t_min is not None:
            near = torch.clamp(t_min.to(**opts), min=near_plane)
        if t_max is not None:
            far = torch.clamp(t_max.to(**opts), max=far_plane)
        if stratified:
            near = near + torch.rand_like(near) * render_step_size
        ray_indices, t_starts, t_ends, offsets = occgrid_march(
            self.bits,
            self.resolution,
            self.roi_aabb.tolist(),
            rays_o,
            rays_d,
            near,
            far,
            render_step_size,
            cone_angle,
            grid_indices,
            self.block_bits,
        )
        if (alpha_thre > 0.0 or early_stop_eps > 0.0) and (sigma_fn is not None or alpha_fn is not None):
            if sigma_fn is not None:
                sigmas = sigma_fn(t_starts, t_ends, ray_indices)
                if sigmas.shape != t_starts.shape:
                    raise ValueError(f"sigma_fn must return {tuple(t_starts.shape)}, got {tuple(sigmas.shape)}")
                alphas = 1.0 - torch.exp(-sigmas * (t_ends - t_starts))
            else:
                alphas = alpha_fn(t_starts, t_ends, ray_indices)
                if alphas.shape != t_starts.shape:
                    raise ValueError(f"alpha_fn must return {tuple(t_starts.shape)}, got {tuple(alphas.shape)}")
            counts = offsets[1:] - offsets[:-1]
            packed_info = torch.stack([offsets[:-1], counts], -1)
            _, trans = render_weight_from_alpha(alphas.to(t_starts.dtype).contiguous(), packed_info=packed_info)
            keep = trans >= early_stop_eps
            if alpha_thre > 0.0:
                # nerfacc caps alpha_thre at the grid's mean occupancy (so a
                # grid of faint density is not culled away); each ray's own grid.
                thre = torch.clamp(self.occs.mean(dim=1), max=alpha_thre).to(alphas.dtype)
                if grid_indices is None:
                    keep &= alphas >= thre[0]
                else:
                    keep &= alphas >= thre[grid_indices.to(ray_indices.device).long()[ray_indices]]
            ray_indices, t_starts, t_ends = ray_indices[keep], t_starts[keep], t_ends[keep]
        return ray_indices, t_starts, t_ends
