"""A phase that ends on the mean of its last steps' weights (``train.average_last``).

Where a phase stops is a draw from the noise of its last steps: two runs of one schedule
whose float results differ in the last bits end on different weights. The uniform mean
of the trained weights over the phase's last N steps (stochastic weight averaging) is a
point that noise moves far less, and the phase hands that mean on and saves it.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..checkpoint import CheckpointFormatError


class WeightAverage:
    """The running mean of ``model``'s trained parameters over steps ``first``..``last``
    (the step counts after each update, both included)."""

    def __init__(self, model: torch.nn.Module, first: int, last: int):
        self.model, self.first, self.last = model, first, last
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    @classmethod
    def for_span(cls, model, span: tuple[int, int], steps: int) -> Optional[WeightAverage]:
        """The average over a phase's last ``steps`` steps (at most the whole phase), or
        None when ``steps`` is 0."""
        start, end = span
        if steps <= 0:
            return None
        return cls(model, max(start + 1, end - steps + 1), end)

    def trained(self):
        return [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold the weights after update ``step`` into the mean (no-op outside the window)."""
        if not self.first <= step <= self.last:
            return
        self.count += 1
        for name, p in self.trained():
            if name not in self.mean:
                self.mean[name] = p.detach().clone()
            else:
                self.mean[name].add_(p.detach() - self.mean[name], alpha=1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> None:
        """The model's trained parameters become the mean (when anything was averaged)."""
        for name, p in self.trained():
            if name in self.mean:
                p.copy_(self.mean[name])

    def state_dict(self) -> dict:
        return {"first": self.first, "last": self.last, "count": self.count, "mean": dict(self.mean)}

    def load_state_dict(self, state: dict) -> None:
        """A checkpoint's average; refused when it covers other steps than this phase's
        (the run was resumed with another ``train.average_last`` or schedule)."""
        if (state["first"], state["last"]) != (self.first, self.last):
            raise CheckpointFormatError(
                f"the checkpoint averages the weights of steps {state['first']}-{state['last']}, this run "
                f"steps {self.first}-{self.last}: resume with the train.average_last it was saved with"
            )
        self.count = int(state["count"])
        self.mean = {name: t.clone() for name, t in state["mean"].items()}
