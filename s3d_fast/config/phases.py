"""A run's phases: the config in force at each generator step, and the steps each phase spans."""

from __future__ import annotations

from .errors import ConfigError
from .overrides import apply_overrides
from .schema import Config, check_config

# Keys a phase may not change: the run's length and its schedule, stage 1, which is over,
# and deterministic mode, which each training process sets when it starts.
FIXED_KEYS = (
    "train.phases",
    "train.steps",
    "train.sync_steps",
    "train.sync_batch",
    "train.sync_lr",
    "train.deterministic",
)


def config_at(cfg: Config, step: int) -> Config:
    """The config a run trains with at generator ``step``: ``cfg`` with the settings of every
    phase that has started applied in order (``train.phases`` itself is kept)."""
    for phase in cfg.train.phases:
        if phase.start <= step:
            cfg = apply_overrides(cfg, [f"{key}={value}" for key, value in phase.settings.items()])
    return cfg


def phase_spans(cfg: Config) -> list[tuple[int, int]]:
    """[start, end) generator steps of each phase, the config's own first: [(0, s1), (s1, s2), ...]."""
    starts = [0] + [phase.start for phase in cfg.train.phases]
    return list(zip(starts, starts[1:] + [cfg.train.steps]))


def check_phases(cfg: Config) -> None:
    """One clear error for a schedule that cannot run, before the run starts."""
    previous = 0
    for i, phase in enumerate(cfg.train.phases):
        where = f"train.phases[{i}]"
        if not previous < phase.start < cfg.train.steps:
            raise ConfigError(
                f"{where}.start must lie after the previous phase's start ({previous}) and before "
                f"train.steps ({cfg.train.steps}), got {phase.start}"
            )
        fixed = [key for key in phase.settings if key in FIXED_KEYS]
        if fixed:
            raise ConfigError(f"{where} sets {fixed[0]}, which holds for the whole run")
        try:
            check_config(config_at(cfg, phase.start))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        previous = phase.start
