"""nerfacc's ``PropNetEstimator`` (Mip-NeRF 360's proposal sampling) in PyTorch:
resample along the rays through each proposal network's transmittance CDF, and
train the proposals so their histograms bound the radiance field's."""

from __future__ import annotations

from typing import Callable, Literal, Optional

import torch
from torch import Tensor

from ..data_specs import RayIntervals
from ..pdf import importance_sampling, searchsorted
from ..volrend import render_transmittance_from_density
from .base import AbstractEstimator


def _s_to_t(sampling_type: str, s_vals: Tensor, t_min, t_max) -> Tensor:
    """Normalised positions s in [0, 1] to distances: linear in t ("uniform") or in
    1/t ("lindisp")."""
    if sampling_type == "uniform":
        return s_vals * t_max + (1 - s_vals) * t_min
    if sampling_type == "lindisp":
        return 1 / (s_vals / t_max + (1 - s_vals) / t_min)
    raise ValueError(f"sampling_type must be 'uniform' or 'lindisp', got {sampling_type!r}")


def _cdf_of(trans: Tensor) -> Tensor:
    """CDF at the interval edges: 1 - T, with 1 after the last interval."""
    return 1.0 - torch.cat([trans, torch.zeros_like(trans[..., :1])], dim=-1)


def _pdf_loss(query: RayIntervals, cdfs_query: Tensor, key: RayIntervals, cdfs_key: Tensor, eps: float = 1e-7):
    """Per interval, how far the query's weight exceeds the key's weight over the
    key intervals that cover it: max(w - w_outer, 0)^2 / (w + eps)."""
    ids_left, ids_right = searchsorted(key, query)
    if query.vals.dim() > 1:
        w = cdfs_query[..., 1:] - cdfs_query[..., :-1]
        ids_left, ids_right = ids_left[..., :-1], ids_right[..., 1:]
    else:
        w = cdfs_query[query.is_right] - cdfs_query[query.is_left]
        ids_left, ids_right = ids_left[query.is_left], ids_right[query.is_right]
    w_outer = cdfs_key.gather(-1, ids_right) - cdfs_key.gather(-1, ids_left)
    return torch.clip(w - w_outer, min=0) ** 2 / (w + eps)


class PropNetEstimator(AbstractEstimator):
    """Proposal-network estimator (nerfacc 0.5's interface).

    Args:
        optimizer: optimises the proposal networks (needed for updates with
            ``requires_grad=True``).
        scheduler: its learning-rate scheduler, stepped at each update.
    """

    def __init__(
        self,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
    ) -> None:
        super().__init__()
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.prop_cache: list = []

    @torch.no_grad()
    def sampling(
        self,
        prop_sigma_fns: list[Callable],
        prop_samples: list[int],
        num_samples: int,
        n_rays: int,
        near_plane: float,
        far_plane: float,
        sampling_type: Literal["uniform", "lindisp"] = "lindisp",
        stratified: bool = False,
        requires_grad: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """(t_starts, t_ends), each (n_rays, num_samples): each proposal
        ``fn(t_starts, t_ends) -> sigmas`` in turn refines the CDF that the next
        samples are drawn from. With ``requires_grad`` the proposals' outputs are
        kept for :meth:`update_every_n_steps`."""
        if len(prop_sigma_fns) != len(prop_samples):
            raise ValueError("PropNetEstimator.sampling: one sample count per proposal network")
        cdfs = torch.cat(
            [torch.zeros((n_rays, 1), device=self.device), torch.ones((n_rays, 1), device=self.device)], dim=-1
        )
        intervals = RayIntervals(vals=cdfs)
        for level_fn, level_samples in zip(prop_sigma_fns, prop_samples):
            intervals, _ = importance_sampling(intervals, cdfs, level_samples, stratified)
            t_vals = _s_to_t(sampling_type, intervals.vals, near_plane, far_plane)
            t_starts, t_ends = t_vals[..., :-1], t_vals[..., 1:]
            with torch.set_grad_enabled(requires_grad):
                sigmas = level_fn(t_starts, t_ends)
                if sigmas.shape != t_starts.shape:
                    raise ValueError(f"proposal sigmas must be {tuple(t_starts.shape)}, got {tuple(sigmas.shape)}")
                trans, _ = render_transmittance_from_density(t_starts, t_ends, sigmas)
                cdfs = _cdf_of(trans)
                if requires_grad:
                    self.prop_cache.append((intervals, cdfs))
        intervals, _ = importance_sampling(intervals, cdfs, num_samples, stratified)
        t_vals = _s_to_t(sampling_type, intervals.vals, near_plane, far_plane)
        if requires_grad:
            self.prop_cache.append((intervals, None))
        return t_vals[..., :-1], t_vals[..., 1:]

    @torch.enable_grad()
    def compute_loss(self, trans: Tensor, loss_scaler: float = 1.0) -> Tensor:
        """The proposals' loss against the radiance field's transmittance (n_rays,
        num_samples) of the last sampling; empties the cache."""
        if not self.prop_cache:
            return torch.zeros((), device=self.device)
        intervals, _ = self.prop_cache.pop()
        cdfs = _cdf_of(trans).detach()
        loss = 0.0
        while self.prop_cache:
            prop_intervals, prop_cdfs = self.prop_cache.pop()
            loss += _pdf_loss(intervals, cdfs, prop_intervals, prop_cdfs).mean()
        return loss * loss_scaler

    @torch.enable_grad()
    def update_every_n_steps(self, trans: Tensor, requires_grad: bool = False, loss_scaler: float = 1.0) -> float:
        """One optimiser step on the proposals when ``requires_grad`` (else only the
        scheduler steps); returns the loss as a float (0.0 without a step)."""
        if requires_grad:
            return self._update(trans=trans, loss_scaler=loss_scaler)
        if self.scheduler is not None:
            self.scheduler.step()
        return 0.0

    @torch.enable_grad()
    def _update(self, trans: Tensor, loss_scaler: float = 1.0) -> float:
        if not self.prop_cache:
            raise RuntimeError("PropNetEstimator: no cached proposals; call sampling(..., requires_grad=True) first")
        if self.optimizer is None:
            raise RuntimeError("PropNetEstimator: an update needs the optimizer given to the constructor")
        loss = self.compute_loss(trans, loss_scaler)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item()


def get_proposal_requires_grad_fn(target: float = 5.0, num_steps: int = 1000) -> Callable:
    """A step -> bool schedule: train the proposals every step at first, then ever
    less often, up to once every ``target`` steps after ``num_steps``."""
    since_last = 0

    def proposal_requires_grad_fn(step: int) -> bool:
        nonlocal since_last
        requires_grad = since_last > min(step / num_steps, 1.0) * target
        if requires_grad:
            since_last = 0
        since_last += 1
        return requires_grad

    return proposal_requires_grad_fn
