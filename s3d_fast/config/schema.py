"""The run config's schema: the model, its losses and the training schedule (docs/design.md
section 4). Plain dataclasses, so a config prints, round-trips through JSON (runs and
checkpoints) and takes ``key=value`` overrides from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .errors import ConfigError


@dataclass
class ModelConfig:
    input_resolution: int = 256  # source images (aligned crops) are this square size
    nerf_resolution: int = 64  # the volume-rendered feature image
    output_resolution: int = 256  # the super-resolution network's output

    # Hierarchical appearance encoder: one tri-plane per pyramid level, coarse to fine.
    encoder_resolution: int = 128  # the source is encoded at this size (planes are coarser still)
    encoder_width: int = 32
    plane_resolutions: tuple[int, ...] = (16, 32, 64)
    plane_channels: int = 16
    feature_channels: int = 32  # rendered feature image; the first 3 channels are colour

    # Audio encoder: per-frame tokens from a 16-frame log-mel window, temporal context.
    audio_dim: int = 64
    audio_tokens_per_frame: int = 4
    audio_context: int = 2  # frames of context on each side of the temporal convolution

    # Cross-modal facial deformation field.
    n_slots: int = 6
    slot_dim: int = 64
    slot_iterations: int = 3
    attention_heads: int = 4
    hash_levels: int = 8
    hash_features: int = 2
    hash_log2_size: int = 15
    hash_base_resolution: int = 8
    hash_per_level_scale: float = 1.5
    deform_hidden: int = 64
    max_offset: float = 0.25  # |dx| bound in box units (the box is [-1, 1]^3)
    # A learned mouth cavity: the deformation field also gives each point a share in
    # (0, 1) of one learned dark feature that replaces what it fetches from the source. A
    # closed-mouth source has no dark interior to warp into an opening, so an opening can
    # only be drawn with colour that is not in the source (docs/experiments.md, "The
    # learned mouth cavity").
    mouth_cavity: bool = False
    # With ``mouth_cavity``: the source super-resolution is conditioned on and blends in,
    # and the frame it paints, are darkened where the rendered cavity share says the ray
    # looks into the mouth (``mouth.open_mouth``), so it cannot paint closed lips over the
    # opening (docs/experiments.md, "The cavity opening").
    cavity_opening: bool = False
    # With ``cavity_opening``: the opening shows the mouth's interior the field renders
    # there (``interior.MouthInterior``: a colour grid over the box, shared by every face,
    # with teeth and tongue where SynthTalk's targets show them), not black.
    mouth_interior: bool = False
    interior_resolution: int = 48  # the interior's colour grid, cells per side of the box
    # With ``mouth_interior``: the opening is painted from the cavity's own colour (what the
    # cavity's share of each ray composites to), not from the whole ray's, which on a photo
    # also carries the lighter lips and skin in front (docs/experiments.md, "The mouth
    # interior and the adaptation together").
    interior_alone: bool = False

    decoder_hidden: int = 64
    sr_width: int = 32
    # Super-resolution may not blend in the source's lips and mouth (labels >= 2 of the
    # source mask), grown down by this fraction of the image (the jaw's reach) and by a
    # third of it elsewhere (``mouth.mouth_keep_out``). 0 lets it (docs/experiments.md,
    # "Reprojection and the mouth keep-out").
    mouth_keep_out: float = 0.0

    # Training-style rendering: stratified coarse samples, then importance samples.
    n_coarse: int = 8
    n_fine: int = 16
    # Baked real-time rendering: occupancy grid over the box, marching step.
    bake_resolution: int = 64
    bake_threshold: float = 0.5  # density above which a cell is occupied
    bake_shell: int = 2  # cells kept inside the surface; deeper ones are carved out (0: keep all)
    # Samples across the box's side of 2 (step = 2 / march_steps, two cells of a 64^3
    # grid; docs/experiments.md, "Marching steps and the real-time path").
    march_steps: int = 32
    early_stop_eps: float = 1e-3


@dataclass
class LossConfig:
    photometric: float = 1.0  # at output resolution
    photometric_low: float = 1.0  # colour channels of the feature image vs the target at NeRF resolution
    mouth_emphasis: float = (
        10.0  # extra photometric weight on lips and mouth pixels (1% of a portrait, all of lip sync)
    )
    # Extra weight on the open mouth's interior (label 3) on top of ``mouth_emphasis``: the
    # dark pixels that show an open mouth, which a blurred painting leaves too light.
    interior_emphasis: float = 0.0
    # With ``model.mouth_cavity``: cross-entropy of the rendered cavity share against the
    # target's open-mouth interior (label 3), weighted like ``photometric_low``; the
    # photometric loss alone is too weak a teacher for a few pixels at NeRF size.
    cavity: float = 1.0
    # With ``model.mouth_interior``: L1 of the painted interior against the target on its
    # open-mouth interior (label 3) alone, its only teacher (``S3DNeRF._finish``).
    interior_colour: float = 1.0
    sync: float = 0.5
    deformation: float = 0.001
    mask: float = 0.1  # rendered opacity vs the head mask


@dataclass
class Phase:
    """From generator step ``start`` on, the run trains with ``settings`` (dotted keys and
    values, as ``--set`` takes them) applied on top of the config and of earlier phases.
    Each phase decays its own learning rate, from its ``train.lr``, by a cosine over its
    steps; a phase may grow the model (``model.mouth_cavity``) or train only part of it
    (``train.train_only``), as a resumed run could."""

    start: int
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class TrainConfig:
    steps: int = 3200
    batch_size: int = 1  # identities per step; each contributes ``frames`` consecutive targets
    frames: int = 2  # consecutive target frames per identity and step
    sync_frames: int = 5  # frames per identity once the sync loss is on (the expert sees 5)
    lr: float = 2e-3
    lr_min_ratio: float = 0.1  # cosine decay to lr * this
    warmup_steps: int = 100
    grad_clip: float = 1.0
    # Each phase ends on the mean of its trained weights over its last this many steps, not
    # on its last step's (``training/weight_average.py``); 0: the last step's weights.
    average_last: int = 0
    # Give the model the source's camera, so super-resolution is trained on the source
    # reprojected into each target's view, as rendering and eval see it (``reproject.py``).
    # Off: the blend then copies the closed source mouth into every frame
    # (docs/experiments.md, "Reprojection and the mouth keep-out").
    reproject_source: bool = False
    # Draw each training source from the clip's frames with the least open mouths (mouth
    # interior area at most this quantile of the clip's; 1: any frame). Evaluation and a
    # user's portrait give a closed mouth; from a random frame the model spends half its
    # steps closing open mouths, a task it never meets.
    source_mouth_quantile: float = 1.0
    # Show each training item under a random camera response of this strength (0..1:
    # white balance, exposure, gamma, saturation; the same for its source and targets), so
    # a photo's colours are not read as a new kind of face (``data/colour_response.py``).
    colour_jitter: float = 0.0
    # Comma-separated top-level generator modules to train (encoder, audio, regions,
    # deformation, decoder, superres); empty: all. "superres" fine-tunes how the rendered
    # features and motion are painted, with no backward pass through the radiance field.
    train_only: str = ""
    view_probability: float = 0.3  # chance a step's targets come from an extra (free-view) camera
    sync_start: int = 1800  # generator step at which the sync loss switches on
    sync_steps: int = 1500  # stage 1: lip-sync discriminator steps
    sync_batch: int = 32
    sync_lr: float = 1e-3
    log_every: int = 10
    checkpoint_every: int = 250
    eval_every: int = 250
    eval_items: int = 4
    seed: int = 0
    # torch.use_deterministic_algorithms(True) in every training process (``--deterministic``):
    # s3d_fast's CUDA backward passes then scatter without float atomics and torch's own
    # kernels are deterministic or refuse, so a resumed CUDA run repeats an uninterrupted
    # one bit for bit (docs/kernels/emulated-cuda.md). The CPU is deterministic either way.
    deterministic: bool = False
    # Later settings for the same run, each from a generator step on (see ``Phase``).
    phases: tuple[Phase, ...] = ()


CONFIG_VERSION = 2  # of the config's JSON form; ``migration`` reads older ones


@dataclass
class Config:
    name: str = "small"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    version: int = field(default=CONFIG_VERSION, init=False)  # written with the config, never set


# Bounds on the model's sizes, so a config (or a checkpoint's config.json) with an absurd
# value is one clear error before any module is built, never a hang or a huge allocation.
_SIZE_LIMIT = 4096
_INT_RANGES = {
    **{
        name: (1, _SIZE_LIMIT)
        for name in (
            "input_resolution",
            "nerf_resolution",
            "output_resolution",
            "encoder_resolution",
            "encoder_width",
            "plane_channels",
            "audio_dim",
            "audio_tokens_per_frame",
            "n_slots",
            "slot_dim",
            "attention_heads",
            "hash_levels",
            "hash_features",
            "hash_base_resolution",
            "deform_hidden",
            "decoder_hidden",
            "sr_width",
            "n_coarse",
            "slot_iterations",
            "march_steps",
        )
    },
    "feature_channels": (3, _SIZE_LIMIT),  # the first three are colour
    "audio_context": (0, 64),
    "hash_log2_size": (1, 30),
    "n_fine": (0, _SIZE_LIMIT),
    "bake_resolution": (1, 1024),
    "interior_resolution": (2, 256),
    "bake_shell": (0, 1024),
}
_FLOAT_RANGES = {
    "hash_per_level_scale": (1.0, 16.0),
    "max_offset": (0.0, 2.0),
    "mouth_keep_out": (0.0, 1.0),
    "bake_threshold": (-1e6, 1e6),
    "early_stop_eps": (0.0, 1.0),
}


# The losses' weights and the training schedule, likewise: every number of the config has
# a range here or above (tests/test_config_limits.py holds new fields to that), so a bad
# value is refused before the data loads, not after the lip-sync expert's stage.
_STEP_LIMIT = 10**9
_WEIGHT_LIMIT = 1e6
_LOSS_RANGES = {f.name: (0.0, _WEIGHT_LIMIT) for f in fields(LossConfig)}
_TRAIN_RANGES = {
    "steps": (1, _STEP_LIMIT),
    "batch_size": (1, 4096),
    "frames": (1, 256),
    "sync_frames": (1, 256),
    "lr": (0.0, 10.0),
    "lr_min_ratio": (0.0, 1.0),
    "warmup_steps": (0, _STEP_LIMIT),
    "grad_clip": (0.0, _WEIGHT_LIMIT),
    "average_last": (0, _STEP_LIMIT),
    "source_mouth_quantile": (0.0, 1.0),
    "colour_jitter": (0.0, 1.0),
    "view_probability": (0.0, 1.0),
    "sync_start": (0, _STEP_LIMIT),
    "sync_steps": (0, _STEP_LIMIT),
    "sync_batch": (1, 4096),
    "sync_lr": (0.0, 10.0),
    "log_every": (1, _STEP_LIMIT),
    "checkpoint_every": (1, _STEP_LIMIT),
    "eval_every": (1, _STEP_LIMIT),
    "eval_items": (0, 4096),
    "seed": (0, 2**63 - 1),
}
# Where the low end itself means nothing: no clipping norm of 0, no empty source pool.
_OPEN_LOW = {"train.grad_clip", "train.source_mouth_quantile"}
RANGES = {
    "model": {**_INT_RANGES, **_FLOAT_RANGES},
    "loss": _LOSS_RANGES,
    "train": _TRAIN_RANGES,
}


def check_config(cfg: Config) -> None:
    """Every number of ``cfg`` in its range (NaN and infinities fail), and the model's
    options consistent: one ConfigError naming the dotted key, before anything runs."""
    check_model_config(cfg.model)
    for section, ranges in (("loss", _LOSS_RANGES), ("train", _TRAIN_RANGES)):
        values = getattr(cfg, section)
        for name, (low, high) in ranges.items():
            _check_range(f"{section}.{name}", getattr(values, name), low, high)


def _check_range(key: str, value, low, high) -> None:
    open_low = key in _OPEN_LOW
    inside = (low < value if open_low else low <= value) and value <= high  # NaN fails
    if not inside:
        low, high = (f"{v:g}" if isinstance(v, float) else str(v) for v in (low, high))
        interval = f"({low}, {high}]" if open_low else f"from {low} to {high}"
        raise ConfigError(f"{key} must be {'in ' if open_low else ''}{interval}, got {value}")


def check_model_config(cfg: ModelConfig) -> None:
    """Sizes in range, and options that only work together: one clear error before a
    module is built or a run starts, not after the lip-sync expert's stage."""
    for name, (low, high) in _INT_RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise ConfigError(f"model.{name} must be from {low} to {high}, got {value}")
    for name, (low, high) in _FLOAT_RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:  # NaN fails too
            raise ConfigError(f"model.{name} must be from {low:g} to {high:g}, got {value}")
    if not cfg.plane_resolutions or not all(1 <= r <= _SIZE_LIMIT for r in cfg.plane_resolutions):
        raise ConfigError(f"model.plane_resolutions must be 1 to {_SIZE_LIMIT} each, got {cfg.plane_resolutions}")
    if cfg.output_resolution < cfg.nerf_resolution:
        raise ConfigError(
            f"model.output_resolution ({cfg.output_resolution}) must be at least model.nerf_resolution "
            f"({cfg.nerf_resolution}): super-resolution only enlarges"
        )
    if cfg.cavity_opening and not cfg.mouth_cavity:
        raise ConfigError("model.cavity_opening needs model.mouth_cavity: the opening is cut where the cavity renders")
    if cfg.interior_alone and not cfg.mouth_interior:
        raise ConfigError("model.interior_alone needs model.mouth_interior: it is how the interior is painted")
    if cfg.mouth_interior and not cfg.cavity_opening:
        raise ConfigError("model.mouth_interior needs model.cavity_opening: the interior shows in the opening")
