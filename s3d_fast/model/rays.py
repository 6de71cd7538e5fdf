"""Camera rays in the head's box and the training-style sample placement
(stratified, then importance samples from the coarse weights)."""

from __future__ import annotations

import torch


def scaled_intrinsics(K: torch.Tensor, src_resolution: int, dst_resolution: int) -> torch.Tensor:
    s = dst_resolution / src_resolution
    K = K.clone()
    K[..., :2, :] *= s
    return K


def camera_rays(c2w: torch.Tensor, K: torch.Tensor, resolution: int):
    """Rays through pixel centres, row-major: c2w (F, 4, 4) camera-to-head (OpenCV), K (F, 3, 3)
    in pixels of ``resolution`` -> origins, unit directions (F, R*R, 3)."""
    dev, dt = c2w.device, c2w.dtype
    v, u = torch.meshgrid(
        torch.arange(resolution, device=dev, dtype=dt) + 0.5,
        torch.arange(resolution, device=dev, dtype=dt) + 0.5,
        indexing="ij",
    )
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    u, v = u.reshape(1, -1), v.reshape(1, -1)
    cam = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u.expand_as(cx * u))], -1)
    d = torch.einsum("frc,fkc->frk", cam, c2w[:, :3, :3])
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[:, None, :3, 3].expand_as(d)
    return o, d


def box_intersection(o: torch.Tensor, d: torch.Tensor, bound: float = 1.0):
    """Entry/exit distances of rays with the box [-bound, bound]^3; rays that miss get
    near == far (an empty interval), so they render nothing without special cases."""
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    t0, t1 = (-bound - o) * inv, (bound - o) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1)
    far = torch.maximum(far, near)
    return near, far


def stratified_edges(near: torch.Tensor, far: torch.Tensor, n: int, jitter: bool) -> torch.Tensor:
    """n + 1 interval edges per ray from near to far, each inner edge jittered in its bin."""
    steps = torch.arange(n + 1, device=near.device, dtype=near.dtype) / n
    if jitter:
        noise = (torch.rand(*near.shape, n + 1, device=near.device, dtype=near.dtype) - 0.5) / n
        noise[..., 0] = 0
        noise[..., -1] = 0
        steps = steps + noise
    return near[..., None] + (far - near)[..., None] * steps


def importance_edges(edges: torch.Tensor, weights: torch.Tensor, n: int, deterministic: bool) -> torch.Tensor:
    """n new edges drawn from the piecewise-constant pdf of ``weights`` over the coarse
    intervals (inverse-CDF sampling), merged with the coarse edges and sorted."""
    w = weights + 1e-5  # keep empty rays sampling uniformly instead of dividing by zero
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), pdf.cumsum(-1)], -1).clamp(max=1.0)
    if deterministic:
        u = (torch.arange(n, device=edges.device, dtype=edges.dtype) + 0.5) / n
        u = u.expand(*cdf.shape[:-1], n).contiguous()
    else:
        u = torch.rand(*cdf.shape[:-1], n, device=edges.device, dtype=edges.dtype)
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[-1] - 1)
    c0, c1 = cdf.gather(-1, idx - 1), cdf.gather(-1, idx)
    e0, e1 = edges.gather(-1, idx - 1), edges.gather(-1, idx)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-8)).clamp(0, 1)
    fine = e0 + frac * (e1 - e0)
    return torch.sort(torch.cat([edges, fine], -1), -1).values
