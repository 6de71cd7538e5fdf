"""Image fidelity: PSNR and SSIM on (B, 3, H, W) float images in [0, 1] (torch).

SSIM follows Wang et al. 2004 with the usual constants (K1 0.01, K2 0.03, data range 1)
and an 11-tap Gaussian window of sigma 1.5, averaged over the positions where the window
fits inside the image (no padding), per channel, then over channels. That is exactly what
``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=-1)`` computes, which the tests
check.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

_K1, _K2 = 0.01, 0.03
_SIGMA = 1.5
_RADIUS = 5  # skimage: int(truncate 3.5 * sigma + 0.5) -> 11 taps


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a float tensor in [0, 1], got {x.dtype}")
        if x.ndim != 4:
            raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(x.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def psnr(
    a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None, reduction: str = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (peak 1) per image, averaged over the batch.

    ``mask`` (B, H, W) or (B, 1, H, W), bool or {0, 1}: the error is averaged over masked
    pixels only (e.g. the face). ``reduction`` "mean" (scalar) or "none" (B,). Identical
    images give +inf.
    """
    _check_pair(a, b)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    err = (a.float() - b.float()).square()
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        if mask.ndim == 3:
            mask = mask[:, None]
        if mask.ndim != 4 or mask.shape[0] != a.shape[0] or mask.shape[1] != 1 or mask.shape[2:] != a.shape[2:]:
            raise ValueError(f"mask must be (B, H, W) or (B, 1, H, W) matching the images, got {tuple(mask.shape)}")
        w = mask.to(err.dtype).expand_as(err)
        count = w.flatten(1).sum(1)
        if bool((count == 0).any()):
            raise ValueError("mask selects no pixel in some image")
        mse = (err * w).flatten(1).sum(1) / count
    out = 10.0 * torch.log10(1.0 / mse)
    return out.mean() if reduction == "mean" else out


def _gaussian_window(dtype, device) -> torch.Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x * x) / (2 * _SIGMA * _SIGMA))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian, 'valid' positions only, each channel alone."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Structural similarity of (B, C, H, W) images in [0, 1] (H, W >= 11); see the module docstring.

    ``reduction`` "mean" (scalar over the batch) or "none" (B,). Computed in float64 when
    the input is float64, else float32. Differentiable.
    """
    _check_pair(a, b)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if min(a.shape[-2:]) < 2 * _RADIUS + 1:
        raise ValueError(f"images must be at least {2 * _RADIUS + 1} pixels on each side, got {tuple(a.shape[-2:])}")
    dtype = torch.float64 if a.dtype == torch.float64 else torch.float32
    a, b = a.to(dtype), b.to(dtype)
    g = _gaussian_window(dtype, a.device)
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    # Variances from E[x^2] - E[x]^2 (population, as skimage with use_sample_covariance=False).
    var_a = _blur(a * a, g) - mu_a * mu_a
    var_b = _blur(b * b, g) - mu_b * mu_b
    cov = _blur(a * b, g) - mu_a * mu_b
    c1, c2 = _K1**2, _K2**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    out = s.flatten(1).mean(1)
    return out.mean() if reduction == "mean" else out
