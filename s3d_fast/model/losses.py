"""Generator losses (DESIGN 4) with the paper's weights as defaults (``LossConfig``)."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from .config import LossConfig


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, H, W) -> (..., C, size, size), antialiased: the target a low-res render should match."""
    lead = images.shape[:-3]
    x = images.reshape(-1, *images.shape[-3:])
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.view(*lead, *x.shape[-3:])


def head_coverage(masks: torch.Tensor, size: int) -> torch.Tensor:
    """Label maps (..., H, W) -> fraction of each low-res pixel on the head, (..., size, size)."""
    return resize((masks > 0).float().unsqueeze(-3), size).squeeze(-3)


def generator_losses(
    out: dict, target: torch.Tensor, masks: torch.Tensor, weights: LossConfig,
    sync_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> Dict[str, torch.Tensor]:
    """out: the model's render dict; target (B, T, 3, H, W); masks (B, T, H, W) labels.
    ``sync_fn(rgb (B, T, 3, H, W)) -> loss`` is the frozen lip-sync expert, when on."""
    r = out["rgb_low"].shape[-1]
    losses = {
        "photometric": F.l1_loss(out["rgb"], target),
        "photometric_low": F.l1_loss(out["rgb_low"], resize(target, r)),
        "mask": F.l1_loss(out["opacity"], head_coverage(masks, r)),
        "deformation": out["offset_sq"],
    }
    if sync_fn is not None:
        losses["sync"] = sync_fn(out["rgb"])
    total = sum(getattr(weights, name) * value for name, value in losses.items())
    losses["total"] = total
    return losses
