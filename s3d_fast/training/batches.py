"""The items of a training step, drawn from a generator seeded by (seed, step, rank), so a
resumed run sees the same data as an uninterrupted one."""

from __future__ import annotations

import numpy as np
from torch.utils.data import default_collate


def draw_batch(dataset, seed: int, step: int, rank: int, size: int) -> dict:
    rng = np.random.default_rng((seed, step, rank))
    return default_collate([dataset[int(i)] for i in rng.integers(len(dataset), size=size)])
