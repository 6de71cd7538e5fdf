"""Pure-PyTorch occupancy-grid marching: dense uniform steps masked by the grid.

Same semantics as :func:`s3d_fast.ops.occgrid_march`, but every step of every
ray is generated and tested (no empty-space skipping), in chunks of rays.
"""

from __future__ import annotations

import torch


def grid_occupied(binaries, roi_aabb, x, grid_idx):
    """Occupancy at points x (..., 3) of grids grid_idx (...): the finest level
    whose box holds the point decides; outside every level is empty."""
    n_levels = binaries.shape[1]
    res = torch.tensor(binaries.shape[2:], device=x.device)
    aabb = torch.as_tensor(roi_aabb, dtype=torch.float64).tolist()
    center = torch.tensor([(aabb[i] + aabb[i + 3]) / 2 for i in range(3)], dtype=x.dtype, device=x.device)
    half = torch.tensor([(aabb[i + 3] - aabb[i]) / 2 for i in range(3)], dtype=x.dtype, device=x.device)
    occ = torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device)
    done = torch.zeros_like(occ)
    for level in range(n_levels):
        scale = float(2**level)
        extent = 2 * half * scale
        u = x - (center - half * scale)
        inside = ((u >= 0) & (u <= extent)).all(-1) & ~done
        c = torch.floor(u * (res / extent)).long()
        c = torch.minimum(torch.clamp(c, min=0), res - 1)
        val = binaries[grid_idx, level, c[..., 0], c[..., 1], c[..., 2]]
        occ = torch.where(inside, val, occ)
        done |= inside
    return occ


def _ray_box(o, d, lo, hi):
    with torch.no_grad():
        inv = 1.0 / d
        ta, tb = (lo - o) * inv, (hi - o) * inv
        t0 = torch.minimum(ta, tb)
        t1 = torch.maximum(ta, tb)
        # Axis-parallel rays: inside the slab -> unbounded, outside -> empty.
        par = d == 0
        inside = (o >= lo) & (o <= hi)
        t0 = torch.where(par, torch.where(inside, -1e30, 1.0), t0)
        t1 = torch.where(par, torch.where(inside, 1e30, 0.0), t1)
        return t0.amax(-1), t1.amin(-1)


def occgrid_march(
    binaries, roi_aabb, rays_o, rays_d, t_near, t_far, step_size, cone_angle=0.0, grid_indices=None, chunk=4096
):
    """(ray_indices, t_starts, t_ends, offsets) like the fused marcher; binaries
    is (n_grids, levels, rx, ry, rz) bool."""
    n, device = rays_o.shape[0], rays_o.device
    if grid_indices is None:
        grid_indices = torch.zeros(n, dtype=torch.long, device=device)
    aabb = torch.as_tensor(roi_aabb, dtype=torch.float64).tolist()
    outer = float(2 ** (binaries.shape[1] - 1))
    c = torch.tensor([(aabb[i] + aabb[i + 3]) / 2 for i in range(3)], dtype=rays_o.dtype, device=device)
    h = torch.tensor([(aabb[i + 3] - aabb[i]) / 2 for i in range(3)], dtype=rays_o.dtype, device=device)
    t_enter, t_exit = _ray_box(rays_o, rays_d, c - h * outer, c + h * outer)
    t_hi = torch.minimum(t_far, t_exit)
    valid = (t_enter <= t_exit) & (t_near < t_hi)
    rays, starts, ends = [], [], []
    for s in range(0, n, chunk):
        sl = slice(s, min(s + chunk, n))
        o, d, t0, hi, ok = rays_o[sl], rays_d[sl], t_near[sl], t_hi[sl], valid[sl]
        if not bool(ok.any()):
            continue
        if cone_angle <= 0:
            span = ((hi - t0)[ok] / step_size).max().item()
            k = torch.arange(int(span) + 2, device=device, dtype=rays_o.dtype)
            ts = t0[:, None] + k * step_size
            te = t0[:, None] + (k + 1) * step_size
        else:
            cols_s, cols_e = [], []
            cur = t0.clone()
            while True:
                dt = torch.clamp(cur * cone_angle, step_size, 1e10)
                nxt = cur + dt
                cols_s.append(cur)
                cols_e.append(nxt)
                if not bool((ok & ((cur + nxt) * 0.5 < hi)).any()):
                    break
                cur = nxt
            ts, te = torch.stack(cols_s, 1), torch.stack(cols_e, 1)
        mid = 0.5 * (ts + te)
        keep = ok[:, None] & (mid < hi[:, None])
        x = o[:, None, :] + mid[..., None] * d[:, None, :]
        g = grid_indices[sl].long()[:, None].expand_as(mid)
        keep &= grid_occupied(binaries, roi_aabb, x, g)
        r, j = keep.nonzero(as_tuple=True)
        rays.append(r + s)
        starts.append(ts[r, j])
        ends.append(te[r, j])
    if rays:
        ray_indices, t_starts, t_ends = torch.cat(rays), torch.cat(starts), torch.cat(ends)
    else:
        ray_indices = torch.zeros(0, dtype=torch.long, device=device)
        t_starts = t_ends = rays_o.new_zeros(0)
    counts = torch.bincount(ray_indices, minlength=n)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return ray_indices, t_starts, t_ends, offsets
