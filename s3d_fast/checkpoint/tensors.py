"""Tensors as safetensors stores them."""

from __future__ import annotations

import torch


def storable(t: torch.Tensor, seen_storage: set) -> torch.Tensor:
    """CPU, contiguous, and owning its storage: safetensors refuses shared storage
    (tied weights, views), so a second user of one storage gets its own copy."""
    t = t.detach().cpu().contiguous()
    ptr = t.untyped_storage().data_ptr()
    if ptr in seen_storage or t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.clone()
        ptr = t.untyped_storage().data_ptr()
    if t.numel():
        seen_storage.add(ptr)
    return t
