"""Argument handling shared by the packed-sample ops (volume rendering).

Samples come either packed, (S,) sorted by ray with ``ray_indices`` (S,) and
``n_rays``, or batched, (n_rays, n_samples), as nerfacc accepts them. Both
become a flat (S,) layout plus ``offsets`` (n_rays + 1,): ray r owns samples
[offsets[r], offsets[r + 1]) (nerfacc's ``chunk_starts`` with the end appended).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _ext

FUSED_DTYPES = (torch.float32, torch.float64)


@dataclass
class Layout:
    offsets: torch.Tensor  # (n_rays + 1,) int64
    n_rays: int
    batched_shape: tuple | None  # (n_rays, n_samples) when the input was batched


def check_float(name: str, x, op: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FUSED_DTYPES:
        raise TypeError(f"{op}: {name} must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{op}: {name} must be on cpu or cuda, got {x.device}")
    return x


def check_like(name: str, x, ref: torch.Tensor, ref_name: str, op: str, shape=None) -> torch.Tensor:
    check_float(name, x, op)
    want = ref.shape if shape is None else shape
    if tuple(x.shape) != tuple(want):
        raise ValueError(f"{op}: {name} has shape {tuple(x.shape)}, expected {tuple(want)} (like {ref_name})")
    if x.dtype != ref.dtype:
        raise TypeError(f"{op}: {name} is {x.dtype} but {ref_name} is {ref.dtype}")
    if x.device != ref.device:
        raise ValueError(f"{op}: {name} is on {x.device} but {ref_name} is on {ref.device}")
    return x


def offsets_from_packed_info(packed_info, n_samples: int, op: str) -> torch.Tensor:
    """(n_rays + 1,) offsets from nerfacc's (chunk_starts, chunk_cnts), checked so
    that the kernels may trust them: counts >= 0, the first chunk at 0, each
    chunk right after the previous one, the last ending at ``n_samples``."""
    if not isinstance(packed_info, torch.Tensor) or packed_info.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{op}: packed_info must be an int32 or int64 tensor")
    if packed_info.dim() != 2 or packed_info.shape[-1] != 2:
        raise ValueError(f"{op}: packed_info must be (n_rays, 2) (chunk_starts, chunk_cnts)")
    starts, counts = packed_info.long().unbind(-1)
    if starts.numel():
        bad = (counts < 0).any() | (starts[0] != 0) | (starts[1:] != starts[:-1] + counts[:-1]).any()
        if bool(bad):
            raise ValueError(
                f"{op}: packed_info must hold counts >= 0 and chunks that start at 0 and follow each other in ray order"
            )
    end = (starts[-1:] + counts[-1:]) if starts.numel() else starts.new_zeros(1)
    if int(end) != n_samples:
        raise ValueError(f"{op}: packed_info covers {int(end)} samples, got {n_samples}")
    return torch.cat([starts, end]).contiguous()


def layout(op: str, x: torch.Tensor, ray_indices=None, n_rays=None, packed_info=None) -> Layout:
    """Offsets for per-sample tensor ``x``: (S,) packed or (n_rays, n_samples) batched."""
    if packed_info is not None:
        if x.dim() != 1:
            raise ValueError(f"{op}: packed samples must be (S,), got {tuple(x.shape)}")
        if isinstance(packed_info, torch.Tensor):
            packed_info = packed_info.to(x.device)
        offsets = offsets_from_packed_info(packed_info, x.shape[0], op)
        return Layout(offsets, offsets.numel() - 1, None)
    if ray_indices is None:
        if x.dim() != 2:
            raise ValueError(
                f"{op}: without ray_indices the samples must be batched (n_rays, n_samples), got shape {tuple(x.shape)}"
            )
        r, n = x.shape
        offsets = torch.arange(0, (r + 1) * n, n if n else 1, device=x.device, dtype=torch.long)[: r + 1]
        if n == 0:
            offsets = torch.zeros(r + 1, device=x.device, dtype=torch.long)
        return Layout(offsets, r, (r, n))
    if not isinstance(ray_indices, torch.Tensor) or ray_indices.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{op}: ray_indices must be an int32 or int64 tensor")
    if x.dim() != 1 or ray_indices.shape != x.shape:
        raise ValueError(
            f"{op}: packed samples must be (S,) with ray_indices (S,), got {tuple(x.shape)} "
            f"and {tuple(ray_indices.shape)}"
        )
    if ray_indices.device != x.device:
        raise ValueError(f"{op}: ray_indices is on {ray_indices.device} but the samples are on {x.device}")
    s = ray_indices.numel()
    if n_rays is None:
        n_rays = int(ray_indices.max()) + 1 if s else 0
    n_rays = int(n_rays)
    if n_rays < 0:
        raise ValueError(f"{op}: n_rays must be >= 0, got {n_rays}")
    # One pass in the extension: offsets plus sortedness and range checks.

    offsets, error = _ext.load().ray_offsets(ray_indices.contiguous(), n_rays)
    if error & 2:
        lo, hi = int(ray_indices.min()), int(ray_indices.max())
        raise ValueError(f"{op}: ray_indices must lie in [0, n_rays={n_rays}), found [{lo}, {hi}]")
    if error & 1:
        raise ValueError(f"{op}: ray_indices must be sorted (samples grouped by ray, as sampling returns them)")
    return Layout(offsets, n_rays, None)


def with_prefix_trans(op: str, weights, trans, alphas, prefix_trans, inputs, inputs_name: str):
    """nerfacc's ``prefix_trans``: the transmittance each sample inherits from
    samples before the packed ones; it scales the transmittance, and the
    weights follow (weight = T alpha). Returns (weights, trans)."""
    if prefix_trans is None:
        return weights, trans
    check_like("prefix_trans", prefix_trans, inputs, inputs_name, op)
    trans = trans * prefix_trans
    return trans * alphas, trans
