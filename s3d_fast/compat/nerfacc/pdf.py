"""nerfacc.pdf: per-ray searchsorted and inverse-transform (importance) sampling,
batched or packed, as dense per-ray tables (one torch.searchsorted for all rays).
Neither is differentiable (nerfacc's are not either)."""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from ._segments import Segments, from_packed_info, packed_info_of
from .data_specs import RayIntervals, RaySamples


def _rows(spec: Union[RayIntervals, RaySamples], name: str) -> tuple[Tensor, Tensor, Tensor]:
    """(table (n_rays, width) padded with +inf, lengths (n_rays,), offsets (n_rays,)
    of each row's first element in ``spec.vals`` flattened)."""
    vals = spec.vals
    if vals.dim() > 1:
        table = vals.reshape(-1, vals.shape[-1])
        rows = table.shape[0]
        length = torch.full((rows,), table.shape[1], dtype=torch.long, device=vals.device)
        return table, length, torch.arange(rows, device=vals.device) * table.shape[1]
    seg = _segments(spec, name)
    return seg.dense(vals, float("inf")), seg.counts, seg.starts


def _segments(spec, name: str) -> Segments:
    packed_info = spec.packed_info
    if packed_info is None:
        if spec.ray_indices is None:
            raise ValueError(f"{name}: flattened vals need packed_info or ray_indices")
        packed_info = packed_info_of(spec.ray_indices)
    return from_packed_info(packed_info.to(spec.vals.device), spec.vals.numel(), f"{name}.packed_info")


def _upper_bound(table: Tensor, length: Tensor, u: Tensor) -> Tensor:
    """Per row, the first index p in [0, length - 1] with table[p] > u (searching
    the row's first length - 1 entries, as nerfacc's kernels do)."""
    width = table.shape[1]
    cols = torch.arange(width, device=table.device)
    keys = torch.where(cols[None, :] < (length - 1)[:, None], table, torch.full_like(table, float("inf")))
    return torch.searchsorted(keys.contiguous(), u.contiguous(), right=True)


@torch.no_grad()
def searchsorted(
    sorted_sequence: Union[RayIntervals, RaySamples], values: Union[RayIntervals, RaySamples]
) -> tuple[Tensor, Tensor]:
    """(ids_left, ids_right) with sorted_sequence[ids_left] <= values < sorted_sequence[ids_right]
    within each ray, clipped to the ray's range. Batched queries get indices within
    the row; packed queries get indices into ``sorted_sequence.vals``."""
    table, length, base = _rows(sorted_sequence, "sorted_sequence")
    query = values.vals
    if query.dim() > 1:
        q = query.reshape(-1, query.shape[-1])
        if q.shape[0] != table.shape[0]:
            raise ValueError(f"searchsorted: {q.shape[0]} query rays for {table.shape[0]} sorted rays")
        p = _upper_bound(table, length, q)
        last = (length - 1)[:, None]
        left = torch.minimum(torch.clamp(p - 1, min=0), last)
        right = torch.minimum(p, last)
        return left.reshape(query.shape), right.reshape(query.shape)
    if values.ray_indices is not None:
        rays = values.ray_indices.long()
    else:
        rays = _segments(values, "values").rays
    order = torch.argsort(rays, stable=True)
    sorted_rays = rays[order]
    q_info = packed_info_of(sorted_rays, table.shape[0])
    seg = from_packed_info(q_info, rays.numel())
    dense_q = seg.dense(query[order], float("inf"))
    p = _upper_bound(table, length, dense_q)[seg.rays, seg.cols]
    last = (length - 1)[sorted_rays]
    left = torch.minimum(torch.clamp(p - 1, min=0), last) + base[sorted_rays]
    right = torch.minimum(p, last) + base[sorted_rays]
    ids_left, ids_right = torch.empty_like(left), torch.empty_like(right)
    ids_left[order], ids_right[order] = left, right
    return ids_left, ids_right


def _invert_cdf(table: Tensor, cdf: Tensor, length: Tensor, n: Tensor, width: int, stratified: bool) -> Tensor:
    """(n_rays, width) sample positions: u = cdf_first + (i + bias) * (cdf_last -
    cdf_first) / n, bias 0.5 or one uniform draw per ray, mapped through the
    per-ray piecewise-linear inverse CDF."""
    rows = table.shape[0]
    idx = torch.arange(rows, device=table.device)
    last = torch.clamp(length - 1, min=0)
    u_lo, u_hi = cdf[idx, 0], cdf[idx, last]
    bias = torch.rand(rows, 1, dtype=cdf.dtype, device=cdf.device) if stratified else 0.5
    steps = torch.arange(width, dtype=cdf.dtype, device=cdf.device)[None, :]
    u = u_lo[:, None] + (steps + bias) * ((u_hi - u_lo) / torch.clamp(n, min=1).to(cdf.dtype))[:, None]
    p = _upper_bound(cdf, length, u)
    p0 = torch.minimum(torch.clamp(p - 1, min=0), last[:, None])
    p1 = torch.minimum(p, last[:, None])
    c0, c1 = cdf.gather(1, p0), cdf.gather(1, p1)
    t0, t1 = table.gather(1, p0), table.gather(1, p1)
    flat = (c1 - c0) < 1e-10
    slope = (t1 - t0) / torch.where(flat, torch.ones_like(c1), c1 - c0)
    return torch.where(flat, (t0 + t1) * 0.5, (u - c0) * slope + t0)


def _edges(samples: Tensor, t_min: Tensor, t_max: Tensor, n: Tensor) -> Tensor:
    """(rows, width + 1) interval edges around (rows, width) samples: midpoints
    between neighbours, the outer edges half a gap out, clamped to [t_min, t_max]
    (a ray of one sample keeps [t_min, t_max])."""
    rows, width = samples.shape
    idx = torch.arange(rows, device=samples.device)
    mids = (samples[:, 1:] + samples[:, :-1]) * 0.5
    last = torch.clamp(n - 1, min=0)
    gap_first = (samples[:, 1:2] - samples[:, :1]) * 0.5 if width > 1 else None
    s_last = samples[idx, last]
    s_prev = samples[idx, torch.clamp(last - 1, min=0)]
    edges = torch.cat([samples[:, :1], mids, samples[:, :1]], dim=1)
    if gap_first is None:
        edges[:, 0] = t_min
    else:
        edges[:, 0] = torch.where(n > 1, torch.maximum(samples[:, 0] - gap_first[:, 0], t_min), t_min)
    end = torch.where(n > 1, torch.minimum(s_last + (s_last - s_prev) * 0.5, t_max), t_max)
    edges[idx, n] = end
    return edges


@torch.no_grad()
def importance_sampling(
    intervals: RayIntervals,
    cdfs: Tensor,
    n_intervals_per_ray: Union[Tensor, int],
    stratified: bool = False,
) -> tuple[RayIntervals, RaySamples]:
    """Resample each ray into ``n_intervals_per_ray`` intervals by inverting the CDF
    given at ``intervals``' edges. An int gives batched results ((n_rays, n + 1)
    edges, (n_rays, n) samples); a (n_rays,) tensor gives packed ones."""
    table, length, _ = _rows(intervals, "intervals")
    if cdfs.shape != intervals.vals.shape:
        raise ValueError(
            f"importance_sampling: cdfs {tuple(cdfs.shape)} must match intervals {tuple(intervals.vals.shape)}"
        )
    cdf = cdfs.reshape(table.shape) if intervals.vals.dim() > 1 else _segments(intervals, "intervals").dense(cdfs, 1.0)
    table = torch.where(torch.isinf(table), torch.zeros_like(table), table)
    rows = table.shape[0]
    idx = torch.arange(rows, device=table.device)
    t_min, t_max = table[:, 0], table[idx, torch.clamp(length - 1, min=0)]
    if isinstance(n_intervals_per_ray, Tensor):
        n = n_intervals_per_ray.to(device=table.device, dtype=torch.long).reshape(-1)
        if n.numel() != rows:
            raise ValueError(f"importance_sampling: n_intervals_per_ray must be ({rows},), got {tuple(n.shape)}")
        width = int(n.max()) if rows else 0
        dense = _invert_cdf(table, cdf, length, n, width, stratified)
        edges = _edges(dense, t_min, t_max, n)
        s_info = torch.stack([torch.cumsum(n, 0) - n, n], -1)
        s_seg = from_packed_info(s_info, int(n.sum()))
        samples = RaySamples(dense[s_seg.rays, s_seg.cols], s_info, s_seg.rays)
        e_counts = (n + 1) * (n > 0)
        e_info = torch.stack([torch.cumsum(e_counts, 0) - e_counts, e_counts], -1)
        e_seg = from_packed_info(e_info, int(e_counts.sum()))
        e_n = n[e_seg.rays]
        is_left = e_seg.cols < e_n
        is_right = e_seg.cols > 0
        out = RayIntervals(edges[e_seg.rays, e_seg.cols], e_info, e_seg.rays, is_left, is_right)
        return out, samples
    n_int = int(n_intervals_per_ray)
    n = torch.full((rows,), n_int, dtype=torch.long, device=table.device)
    dense = _invert_cdf(table, cdf, length, n, n_int, stratified)
    edges = _edges(dense, t_min, t_max, n)
    lead = intervals.vals.shape[:-1] if intervals.vals.dim() > 1 else (rows,)
    return RayIntervals(edges.reshape(*lead, n_int + 1)), RaySamples(dense.reshape(*lead, n_int))
