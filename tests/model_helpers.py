"""A tiny model configuration for tests (the real architecture at toy sizes) and the tiny
SynthTalk set the training and evaluation tests run it on."""

import contextlib

from s3d_fast.config import Config, ModelConfig, TrainConfig

TINY_MODEL = dict(
    input_resolution=64,
    encoder_resolution=32,
    encoder_width=8,
    plane_resolutions=(4, 8, 16),
    plane_channels=8,
    nerf_resolution=16,
    output_resolution=64,
    feature_channels=8,
    audio_dim=16,
    audio_tokens_per_frame=2,
    n_slots=3,
    slot_dim=16,
    slot_iterations=2,
    attention_heads=2,
    hash_levels=4,
    hash_log2_size=10,
    hash_base_resolution=4,
    deform_hidden=16,
    decoder_hidden=16,
    sr_width=16,
    n_coarse=4,
    n_fine=4,
    bake_resolution=16,
    march_steps=32,
)

TINY_OVERRIDES = [f"model.{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY_MODEL.items()]


# A few fast generator steps of the tiny model: no lip-sync stage, every step logged.
FAST_TRAIN = TINY_OVERRIDES + [
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.eval_every=3",
    "train.eval_items=1",
    "train.checkpoint_every=2",
    "loss.sync=0",
    "train.sync_steps=0",
]


def tiny_config() -> Config:
    return Config(name="tiny", model=ModelConfig(**TINY_MODEL), train=TrainConfig(steps=4, warmup_steps=1))


def make_tiny_synthtalk(out) -> None:
    """3 identities (1 held out), one 0.6 s clip each, 64^2, one extra view."""
    from s3d_fast.cli import main

    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--identities",
                "3",
                "--heldout",
                "1",
                "--clips",
                "1",
                "--seconds",
                "0.6",
                "--size",
                "64",
                "--views",
                "1",
                "--quiet",
                "--workers",
                "1",
            ]
        )
        == 0
    )


@contextlib.contextmanager
def training_interrupted_at(step: int):
    """Within: a run's generator gets Ctrl-C once it has taken ``step`` steps (the run then
    saves a checkpoint of that step and ``main`` returns 130)."""
    from s3d_fast.training.generator_stage import GeneratorStage

    original = GeneratorStage.train_step

    def interrupted(self, update=True):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, update)

    GeneratorStage.train_step = interrupted
    try:
        yield
    finally:
        GeneratorStage.train_step = original
