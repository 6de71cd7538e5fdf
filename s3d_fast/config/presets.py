"""The named configs: ``small`` trains on a 2-core CPU, ``demo`` is the schedule that made the
bundled demo checkpoint, ``paper`` follows S^3D-NeRF's sizes."""

from __future__ import annotations

from .errors import ConfigError
from .schema import Config, LossConfig, ModelConfig, Phase, TrainConfig


def small() -> Config:
    # The sync loss starts late and small: at the paper's 0.5 it overwhelms the photometric
    # terms with this expert (docs/experiments.md, "The sync loss").
    return Config(loss=LossConfig(sync=0.01))


def demo() -> Config:
    """``small`` in four phases (docs/experiments.md, "The demo checkpoint"): the whole
    model without the sync loss; from step 1800 the learned mouth cavity, taught by the
    open mouths of the targets, with the sync loss on; from step 2680 super-resolution
    alone, with the mouth opened where the cavity renders; from step 3560 the mouth's
    interior alone, painted from the cavity's own colour, everything else frozen.
    Trained with ``--nproc 2``."""
    cavity = Phase(
        1800,
        {
            "loss.sync": "0.01",
            "loss.deformation": "0.01",
            "model.mouth_cavity": "true",
            "train.source_mouth_quantile": "0.25",
            "loss.interior_emphasis": "30",
            "train.lr": "9e-4",
            "train.lr_min_ratio": "0.32",
        },
    )
    superres_alone = Phase(
        2680,
        {
            "train.train_only": "superres",
            "loss.mouth_emphasis": "30",
            "model.cavity_opening": "true",
            "train.lr": "6.5e-4",
            "train.lr_min_ratio": "0.4",
        },
    )
    interior_alone = Phase(
        3560,
        {
            "model.mouth_interior": "true",
            "model.interior_alone": "true",
            "train.train_only": "interior",
            "loss.interior_colour": "1.0",
            "train.lr": "6.5e-4",
            "train.lr_min_ratio": "0.4",
        },
    )
    phases = (cavity, superres_alone, interior_alone)
    return Config(name="demo", loss=LossConfig(sync=0.0), train=TrainConfig(steps=4200, phases=phases))


def paper() -> Config:
    return Config(
        name="paper",
        model=ModelConfig(
            nerf_resolution=128,
            output_resolution=512,
            input_resolution=512,
            encoder_resolution=256,
            encoder_width=64,
            plane_resolutions=(32, 64, 128, 256),
            plane_channels=32,
            feature_channels=32,
            audio_dim=128,
            n_slots=8,
            slot_dim=128,
            hash_levels=16,
            hash_log2_size=19,
            hash_base_resolution=16,
            hash_per_level_scale=1.447,
            deform_hidden=128,
            decoder_hidden=128,
            sr_width=64,
            n_coarse=48,
            n_fine=48,
            bake_resolution=128,
            march_steps=80,
        ),
        train=TrainConfig(steps=200_000, batch_size=4, lr=5e-4),
    )


CONFIGS = {"small": small, "demo": demo, "paper": paper}


def get_config(name: str) -> Config:
    if name not in CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]()
