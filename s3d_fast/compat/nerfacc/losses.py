"""nerfacc.losses: Mip-NeRF 360's distortion loss."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from .scan import exclusive_sum
from .volrend import accumulate_along_rays


def distortion(
    weights: Tensor,
    t_starts: Tensor,
    t_ends: Tensor,
    ray_indices: Optional[Tensor] = None,
    n_rays: Optional[int] = None,
) -> Tensor:
    """Per-ray distortion, sum_ij w_i w_j |m_i - m_j| + 1/3 sum_i w_i^2 (t_end - t_start)_i
    (m: interval midpoints), (n_rays, 1); packed with sorted ``ray_indices`` or batched
    (..., n_samples). The pairwise term is 2 sum_i w_i (m_i S_i - M_i) with S, M the
    exclusive per-ray sums of w and w m (samples sorted by t)."""
    if not (weights.shape == t_starts.shape == t_ends.shape):
        raise ValueError(
            f"distortion: weights {tuple(weights.shape)}, t_starts {tuple(t_starts.shape)} and t_ends "
            f"{tuple(t_ends.shape)} must have one shape"
        )
    mids = 0.5 * (t_starts + t_ends)
    uni = (t_ends - t_starts) * weights.pow(2) / 3.0
    if ray_indices is not None and ray_indices.shape != weights.shape:
        raise ValueError(f"distortion: ray_indices must be {tuple(weights.shape)}, got {tuple(ray_indices.shape)}")
    w_before = exclusive_sum(weights, indices=ray_indices)
    wm_before = exclusive_sum(weights * mids, indices=ray_indices)
    per_sample = uni + 2.0 * weights * (mids * w_before - wm_before)
    return accumulate_along_rays(per_sample, None, ray_indices, n_rays)
