"""nerfacc's ``OccGridEstimator`` on s3d-fast's fused occupancy-grid marcher.

The buffers are nerfacc's (``resolution``, ``aabbs``, ``occs``, ``binaries``), so
state dicts load both ways; the marcher reads a bitfield of ``binaries`` that is
rebuilt only when ``binaries`` changes (reassigned, or written in place: tracked
through the tensor's version counter).
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from ....ops.occupancy_grid import block_bits_of, occgrid_march, pack_bits
from ..volrend import render_visibility_from_alpha, render_visibility_from_density
from .base import AbstractEstimator


def _cell_coords(indices: Tensor, resolution: Tensor) -> Tensor:
    """(N, 3) integer coordinates of flat cell indices (x major, z minor)."""
    ry, rz = int(resolution[1]), int(resolution[2])
    return torch.stack([indices // (ry * rz), (indices // rz) % ry, indices % rz], -1)


class OccGridEstimator(AbstractEstimator):
    """Occupancy grid for empty-space skipping (nerfacc 0.5's interface).

    Args:
        roi_aabb: (6,) min xyz, max xyz of the finest level.
        resolution: cells per axis, an int or 3 of them.
        levels: nested levels, level l covering roi_aabb scaled by 2^l.
    """

    DIM: int = 3

    def __init__(
        self,
        roi_aabb: Union[list[float], Tensor],
        resolution: Union[int, list[int], Tensor] = 128,
        levels: int = 1,
        **kwargs,
    ) -> None:
        super().__init__()
        if "contraction_type" in kwargs:
            raise ValueError("OccGridEstimator: `contraction_type` is not supported (nor since nerfacc 0.4.0)")
        if kwargs:
            raise TypeError(f"OccGridEstimator: unexpected arguments {sorted(kwargs)}")
        if isinstance(resolution, int):
            resolution = [resolution] * self.DIM
        resolution = torch.as_tensor(resolution, dtype=torch.int32).flatten()
        if resolution.numel() != self.DIM or int(resolution.min()) < 1:
            raise ValueError(
                f"OccGridEstimator: resolution must be a positive int or 3 of them, got {resolution.tolist()}"
            )
        roi = torch.as_tensor(roi_aabb, dtype=torch.float32).flatten()
        if roi.numel() != 2 * self.DIM or not bool((roi[3:] > roi[:3]).all()):
            raise ValueError(f"OccGridEstimator: roi_aabb must be 6 numbers with max > min, got {roi.tolist()}")
        if int(levels) < 1:
            raise ValueError(f"OccGridEstimator: levels must be >= 1, got {levels}")
        self.levels = int(levels)
        self.cells_per_lvl = int(resolution.prod())
        center, half = (roi[:3] + roi[3:]) / 2, (roi[3:] - roi[:3]) / 2
        scales = 2.0 ** torch.arange(self.levels, dtype=torch.float32)[:, None]
        self.register_buffer("resolution", resolution)
        self.register_buffer("aabbs", torch.cat([center - half * scales, center + half * scales], -1))
        self.register_buffer("occs", torch.zeros(self.levels * self.cells_per_lvl))
        self.register_buffer("binaries", torch.zeros([self.levels] + resolution.tolist(), dtype=torch.bool))
        self._bitfield_cache = None

    # -- nerfacc's helper buffers, made on demand (6 int64 per cell otherwise) --------
    @property
    def grid_indices(self) -> Tensor:
        return torch.arange(self.cells_per_lvl, device=self.occs.device)

    @property
    def grid_coords(self) -> Tensor:
        return _cell_coords(self.grid_indices, self.resolution)

    def _bitfield(self) -> tuple[Tensor, Tensor]:
        """The marcher's (bits, block bits) of ``binaries``, rebuilt when it changed."""
        binaries = self.binaries
        cache = self._bitfield_cache
        if cache is None or cache[0] is not binaries or cache[1] != binaries._version:
            grids = binaries.bool()[None]
            self._bitfield_cache = (binaries, binaries._version, pack_bits(grids), block_bits_of(grids))
        return self._bitfield_cache[2], self._bitfield_cache[3]

    # -- sampling ------------------------------------------------------------------
    @torch.no_grad()
    def sampling(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        sigma_fn: Optional[Callable] = None,
        alpha_fn: Optional[Callable] = None,
        near_plane: float = 0.0,
        far_plane: float = 1e10,
        t_min: Optional[Tensor] = None,
        t_max: Optional[Tensor] = None,
        render_step_size: float = 1e-3,
        early_stop_eps: float = 1e-4,
        alpha_thre: float = 0.0,
        stratified: bool = False,
        cone_angle: float = 0.0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Packed samples (ray_indices, t_starts, t_ends), sorted by ray then t: the
        steps from max(near_plane, t_min) of ``render_step_size`` (growing as t *
        cone_angle when larger) whose midpoint lies in an occupied cell, before
        min(far_plane, t_max) and the outermost box. With ``sigma_fn`` /
        ``alpha_fn`` (t_starts, t_ends, ray_indices) -> (N,), samples behind
        transmittance < early_stop_eps or with alpha < min(alpha_thre, mean occupancy)
        are dropped."""
        near = torch.full_like(rays_o[..., 0], float(near_plane))
        far = torch.full_like(rays_o[..., 0], float(far_plane))
        if t_min is not None:
            near = torch.clamp(near, min=t_min.to(near))
        if t_max is not None:
            far = torch.clamp(far, max=t_max.to(far))
        if stratified:
            near = near + torch.rand_like(near) * render_step_size
        bits, block_bits = self._bitfield()
        ray_indices, t_starts, t_ends, offsets = occgrid_march(
            bits,
            self.resolution.tolist(),
            self.aabbs[0].tolist(),
            rays_o,
            rays_d,
            near,
            far,
            render_step_size,
            cone_angle,
            None,
            block_bits,
        )
        if (alpha_thre > 0.0 or early_stop_eps > 0.0) and (sigma_fn is not None or alpha_fn is not None):
            alpha_thre = min(alpha_thre, self.occs.mean().item())
            packed_info = torch.stack([offsets[:-1], offsets[1:] - offsets[:-1]], -1)
            if sigma_fn is not None:
                sigmas = sigma_fn(t_starts, t_ends, ray_indices) if t_starts.numel() else t_starts.new_empty(0)
                if sigmas.shape != t_starts.shape:
                    raise ValueError(f"sigma_fn must return shape {tuple(t_starts.shape)}, got {tuple(sigmas.shape)}")
                visible = render_visibility_from_density(
                    t_starts, t_ends, sigmas.to(t_starts), packed_info, None, None, early_stop_eps, alpha_thre
                )
            else:
                alphas = alpha_fn(t_starts, t_ends, ray_indices) if t_starts.numel() else t_starts.new_empty(0)
                if alphas.shape != t_starts.shape:
                    raise ValueError(f"alpha_fn must return shape {tuple(t_starts.shape)}, got {tuple(alphas.shape)}")
                visible = render_visibility_from_alpha(
                    alphas.to(t_starts), packed_info, None, None, early_stop_eps, alpha_thre
                )
            ray_indices, t_starts, t_ends = ray_indices[visible], t_starts[visible], t_ends[visible]
        return ray_indices, t_starts, t_ends

    # -- updates ---------------------------------------------------------------------
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
        """Every ``n`` steps: evaluate ``occ_eval_fn(x (N, 3)) -> (N, 1)`` at a jittered
        point of each chosen cell (all visible cells during warm-up, then per level
        a quarter drawn at random plus up to as many occupied ones), occ = max(occ *
        ema_decay, new), occupied where occ > min(mean, occ_thre)."""
        if not self.training:
            raise RuntimeError(
                "OccGridEstimator.update_every_n_steps is for training (call .train()); "
                "call _update() directly to update the grid at inference"
            )
        if step % n == 0:
            self._update(step, occ_eval_fn, occ_thre, ema_decay, warmup_steps)

    def _visible_cells(self, level: int, indices: Tensor) -> Tensor:
        """``indices`` of ``level`` not marked invisible (occ -1)."""
        return indices[self.occs[level * self.cells_per_lvl + indices] >= 0.0]

    def _get_all_cells(self) -> list[Tensor]:
        return [self._visible_cells(lvl, self.grid_indices) for lvl in range(self.levels)]

    def _sample_uniform_and_occupied_cells(self, n: int) -> list[Tensor]:
        out = []
        for lvl in range(self.levels):
            uniform = self._visible_cells(lvl, torch.randint(self.cells_per_lvl, (n,), device=self.occs.device))
            occupied = torch.nonzero(self.binaries[lvl].flatten())[:, 0]
            if n < occupied.numel():
                occupied = occupied[torch.randint(occupied.numel(), (n,), device=self.occs.device)]
            out.append(torch.cat([uniform, occupied]))
        return out

    @torch.no_grad()
    def _update(
        self, step: int, occ_eval_fn: Callable, occ_thre: float = 0.01, ema_decay: float = 0.95, warmup_steps: int = 256
    ) -> None:
        """The EMA update (one ``occ_eval_fn`` call per level, as nerfacc)."""
        if step < warmup_steps:
            level_cells = self._get_all_cells()
        else:
            level_cells = self._sample_uniform_and_occupied_cells(self.cells_per_lvl // 4)
        res = self.resolution.to(self.occs.device)
        for lvl, indices in enumerate(level_cells):
            coords = _cell_coords(indices, res).float()
            unit = (coords + torch.rand_like(coords)) / res
            box = self.aabbs[lvl]
            occ = occ_eval_fn(box[:3] + unit * (box[3:] - box[:3])).reshape(-1).to(self.occs)
            if occ.numel() != indices.numel():
                raise ValueError(f"occ_eval_fn returned {occ.numel()} values for {indices.numel()} points")
            cells = lvl * self.cells_per_lvl + indices
            # A cell drawn twice keeps its larger value (deterministic, where nerfacc keeps either).
            fresh = torch.full_like(self.occs, float("-inf")).scatter_reduce_(0, cells, occ, reduce="amax")
            touched = fresh > float("-inf")
            self.occs[touched] = torch.maximum(self.occs[touched] * ema_decay, fresh[touched])
        visible = self.occs[self.occs >= 0]
        thre = torch.clamp(visible.mean(), max=occ_thre)
        self.binaries = (self.occs > thre).view(self.binaries.shape)

    @torch.no_grad()
    def mark_invisible_cells(
        self, K: Tensor, c2w: Tensor, width: int, height: int, near_plane: float = 0.0, chunk: int = 32**3
    ) -> None:
        """Mark the cells no camera sees (or that lie closer than ``near_plane`` in front
        of one) with occupancy -1, so updates skip them; K (N or 1, 3, 3), c2w (N, 3 or
        4, 4). Call once before training."""
        if K.dim() != 3 or K.shape[1:] != (3, 3):
            raise ValueError(f"mark_invisible_cells: K must be (N, 3, 3), got {tuple(K.shape)}")
        if c2w.dim() != 3 or c2w.shape[1:] not in ((3, 4), (4, 4)):
            raise ValueError(f"mark_invisible_cells: c2w must be (N, 3, 4) or (N, 4, 4), got {tuple(c2w.shape)}")
        if K.shape[0] not in (1, c2w.shape[0]):
            raise ValueError(f"mark_invisible_cells: K holds {K.shape[0]} cameras, c2w {c2w.shape[0]}")
        K, c2w = K.to(self.occs), c2w.to(self.occs)
        rot = c2w[:, :3, :3].transpose(2, 1)
        trans = -rot @ c2w[:, :3, 3:]
        res = self.resolution.to(self.occs.device)
        for lvl, indices in enumerate(self._get_all_cells()):
            box = self.aabbs[lvl]
            for start in range(0, indices.numel(), chunk):
                part = indices[start : start + chunk]
                unit = _cell_coords(part, res).float() / (res - 1).clamp(min=1)  # cell corners, as nerfacc
                uvd = K @ (rot @ (box[:3] + unit * (box[3:] - box[:3])).T + trans)
                uv = uvd[:, :2] / uvd[:, 2:]
                in_image = (
                    (uvd[:, 2] >= 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
                )
                seen = ((uvd[:, 2] >= near_plane) & in_image).any(0)
                too_near = ((uvd[:, 2] < near_plane) & in_image).any(0)
                value = torch.where(seen & ~too_near, 0.0, -1.0).to(self.occs)
                self.occs[lvl * self.cells_per_lvl + part] = value
