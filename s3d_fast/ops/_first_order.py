"""The fused ops' backward passes are first-order only. torch's
``once_differentiable`` does not guard this: it detaches the gradient from the
op's inputs, so ``gradgradcheck`` and a gradient penalty silently get second
derivatives of zero. Here a gradient computed with ``create_graph=True`` stays
linked to the op's tensors through a node whose backward raises instead."""

from __future__ import annotations

import torch


class _Refuse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op, grad, *linked):
        ctx.op = op
        return grad.clone()

    @staticmethod
    def backward(ctx, *_):
        raise RuntimeError(
            f"{ctx.op}: second derivatives are not supported (the fused backward is first-order only); "
            "use the pure-PyTorch op in s3d_fast.ops.reference to differentiate twice"
        )


def first_order(op: str, grads: tuple, tensors: tuple) -> tuple:
    """``grads`` as they are, or, under ``create_graph=True``, each linked to the
    ``tensors`` that require grad (the op's saved tensors and incoming gradients)."""
    if not torch.is_grad_enabled():
        return grads
    linked = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    if not linked:
        return grads
    return tuple(g if g is None else _Refuse.apply(op, g, *linked) for g in grads)
