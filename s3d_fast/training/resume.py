"""Resuming into a model that a config option grew: which parameters are new, and the
optimizer state moved to the grown model's parameter numbering."""

from __future__ import annotations

from ..errors import S3DError


def parameters_added(saved_config: dict, cfg, model) -> set:
    """Names of the parameters that ``cfg`` adds to a run saved with ``saved_config``:
    options that grow the model (``model.mouth_cavity``) may be switched on when a run is
    resumed, and what they add starts from its initialisation."""
    was_on = bool(saved_config.get("model", {}).get("mouth_cavity", False))
    if was_on or not cfg.model.mouth_cavity:
        return set()
    return {name for name, _ in model.named_parameters() if "cavity" in name}


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
