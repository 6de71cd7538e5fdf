"""Generator losses (docs/design.md section 4) with the paper's weights as defaults (``LossConfig``)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..config import LossConfig


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, H, W) -> (..., C, size, size), antialiased: the target a low-res render should match."""
    lead = images.shape[:-3]
    x = images.reshape(-1, *images.shape[-3:])
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.view(*lead, *x.shape[-3:])


def head_coverage(masks: torch.Tensor, size: int) -> torch.Tensor:
    """Label maps (..., H, W) -> fraction of each low-res pixel on the head, (..., size, size)."""
    return resize((masks > 0).float().unsqueeze(-3), size).squeeze(-3)


def mouth_region(masks: torch.Tensor, grow: int = 2, labels: int = 2) -> torch.Tensor:
    """Pixels with labels >= ``labels`` (2: lips and mouth interior; 3: the interior alone),
    grown by ``grow`` pixels, as float (..., H, W)."""
    m = (masks >= labels).float().reshape(-1, 1, *masks.shape[-2:])
    m = F.max_pool2d(m, 2 * grow + 1, stride=1, padding=grow)
    return m.view(masks.shape)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of weight * |pred - target|, normalised by the mean weight so the loss keeps its scale."""
    w = weight.expand_as(pred)
    return (w * (pred - target).abs()).sum() / w.sum().clamp(min=1e-12)


def weighted_bce(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of probabilities ``pred`` against soft ``target``, weighted and
    normalised like ``weighted_l1``."""
    # Written out: torch's binary_cross_entropy refuses to run under CUDA autocast.
    w = weight.expand_as(pred)
    bce = -(target * pred.log() + (1 - target) * (1 - pred).log())
    return (w * bce).sum() / w.sum()


def generator_losses(
    out: dict,
    target: torch.Tensor,
    masks: torch.Tensor,
    weights: LossConfig,
    sync_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> dict[str, torch.Tensor]:
    """out: the model's render dict; target (B, T, 3, H, W); masks (B, T, H, W) labels.
    ``sync_fn(rgb (B, T, 3, H, W)) -> loss`` is the frozen lip-sync expert, when on."""
    r = out["rgb_low"].shape[-1]
    emphasis = 1.0 + weights.mouth_emphasis * mouth_region(masks).unsqueeze(-3)
    if weights.interior_emphasis > 0:
        emphasis = emphasis + weights.interior_emphasis * mouth_region(masks, grow=1, labels=3).unsqueeze(-3)
    low_emphasis = resize(emphasis, r)
    losses = {
        "photometric": weighted_l1(out["rgb"], target, emphasis),
        "photometric_low": weighted_l1(out["rgb_low"], resize(target, r), low_emphasis),
        "mask": F.l1_loss(out["opacity"], head_coverage(masks, r)),
        "deformation": out["offset_sq"],
    }
    if "cavity" in out:
        interior = resize((masks == 3).float().unsqueeze(-3), r).squeeze(-3)
        share = out["cavity"].clamp(1e-4, 1 - 1e-4)
        losses["cavity"] = weighted_bce(share, interior, low_emphasis.squeeze(-3))
    if "interior" in out:
        losses["interior_colour"] = weighted_l1(out["interior"], target, (masks == 3).float().unsqueeze(-3))
    if sync_fn is not None:
        losses["sync"] = sync_fn(out["rgb"])
    total = sum(getattr(weights, name) * value for name, value in losses.items())
    losses["total"] = total
    return losses
