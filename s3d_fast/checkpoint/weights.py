"""Loading a state dict into a module, with one clear error on a mismatch."""

from __future__ import annotations

import torch

from .errors import StateDictMismatchError


def load_model_state(
    module: torch.nn.Module, state: dict[str, torch.Tensor], strict: bool = True, may_miss=frozenset()
) -> tuple[list[str], list[str]]:
    """``module.load_state_dict(state)`` with one clear error on a mismatch.

    DDP / DataParallel wrappers are looked through, and a state saved from such a wrapper
    (every key prefixed ``module.``) loads into the bare module. Shape mismatches always
    raise; missing / unexpected keys raise when ``strict``, except missing keys named in
    ``may_miss`` (parameters a config option adds, which keep their initialisation).
    Returns (missing, unexpected).
    """
    target = (
        module.module
        if isinstance(module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel))
        else module
    )
    own = target.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in own):
        state = {k[len("module.") :]: v for k, v in state.items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if mismatched:
        shown = ", ".join(f"{k} {c} vs {m}" for k, c, m in mismatched[:3])
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        problems.append(
            f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''}"
            f" (checkpoint vs model: {shown}{more})"
        )
    unexcused = [k for k in missing if k not in may_miss]
    if strict and unexcused:
        problems.append(f"{len(unexcused)} missing key{'s' if len(unexcused) > 1 else ''} ({_few(unexcused)})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) > 1 else ''} ({_few(unexpected)})")
    if problems:
        raise StateDictMismatchError(
            f"checkpoint weights do not fit this "
            f"{type(target).__name__}: " + "; ".join(problems) + " - was it saved with a different config?"
        )
    target.load_state_dict(state, strict=strict and not missing)
    return missing, unexpected


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f", ... {len(keys) - n} more" if len(keys) > n else "")
