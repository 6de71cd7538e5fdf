"""Resuming into a model that a config option grew: which parameters are new, and the
optimizer state moved to the grown model's parameter numbering."""

from __future__ import annotations

from ..errors import S3DError

# Options that grow the model, and a part of the name of every parameter each one adds.
GROWING_OPTIONS = {"mouth_cavity": "cavity", "mouth_interior": "interior."}


def parameters_added(saved_config: dict, cfg, model) -> set:
    """Names of the parameters that ``cfg`` adds to a run saved with ``saved_config``:
    options that grow the model (``model.mouth_cavity``, ``model.mouth_interior``) may be
    switched on when a run is resumed, and what they add starts from its initialisation."""
    saved_model = saved_config.get("model", {})
    added = set()
    for option, part in GROWING_OPTIONS.items():
        if getattr(cfg.model, option) and not saved_model.get(option, False):
            added |= {name for name, _ in model.named_parameters() if part in name}
    return added


def optimizer_state_with_new_parameters(state: dict, model, added: set) -> dict:
    """An Adam state saved for the model without ``added`` -> the same state for the model
    with them: torch numbers parameters by their place in ``model.parameters()``, and the
    new ones sit among the old. The new ones get no moments (Adam starts them afresh)."""
    names = [name for name, _ in model.named_parameters()]
    old_to_new = [i for i, name in enumerate(names) if name not in added]
    (group,) = state["param_groups"]
    if len(group["params"]) != len(old_to_new):
        raise S3DError(
            f"the saved optimizer holds {len(group['params'])} parameters, the model without "
            f"{sorted(added)} has {len(old_to_new)}"
        )
    return {
        "state": {old_to_new[int(i)]: s for i, s in state["state"].items()},
        "param_groups": [{**group, "params": list(range(len(names)))}],
    }
