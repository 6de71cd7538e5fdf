"""Config dataclasses <-> dicts, command-line overrides, printing."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from s3d_fast.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_keys,
    config_to_dict,
    flatten_config,
    format_config,
)
from s3d_fast.errors import S3DError


@dataclass(frozen=True)
class Planes:
    channels: int = 32
    resolutions: tuple[int, ...] = (64, 128)
    aggregation: Literal["sum", "mean", "concat"] = "sum"


@dataclass(frozen=True)
class Model:
    planes: Planes = field(default_factory=Planes)
    hidden: int = 64
    out_size: tuple[int, int] = (256, 256)


@dataclass(frozen=True)
class Train:
    lr: float = 1e-3
    steps: int = 1000
    amp: bool = False
    name: str = "run"
    eval_every: Optional[int] = None
    loss_weights: dict[str, float] = field(default_factory=lambda: {"photo": 1.0})
    milestones: list[int] = field(default_factory=list)

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass(frozen=True)
class Config:
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)


@dataclass
class NeedsValue:
    size: int


def test_round_trip_through_json():
    cfg = apply_overrides(Config(), ["model.planes.channels=16", "train.eval_every=50", "train.milestones=10,20"])
    d = config_to_dict(cfg)
    assert d["model"]["planes"]["resolutions"] == [64, 128]  # JSON-able: tuples are lists
    back = config_from_dict(Config, json.loads(json.dumps(d)))
    assert back == cfg
    assert isinstance(back.model.planes.resolutions, tuple)
    assert isinstance(back.train.milestones, list)


def test_from_dict_fills_defaults_and_converts_losslessly():
    cfg = config_from_dict(Config, {"train": {"lr": 1, "steps": 5.0}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.steps == 5 and isinstance(cfg.train.steps, int)
    assert cfg.model == Model()


@pytest.mark.parametrize(
    "d, message",
    [
        ({"model": {"planes": {"chanels": 3}}}, "unknown config key 'model.planes.chanels'"),
        ({"trian": {}}, "unknown config key 'trian'; did you mean train"),
        ({"train": {"steps": "ten"}}, "config key 'train.steps': expected an integer"),
        ({"train": {"steps": 2.5}}, "config key 'train.steps': expected an integer"),
        ({"train": {"amp": 1}}, "config key 'train.amp': expected true or false"),
        ({"train": {"lr": True}}, "config key 'train.lr': expected a number"),
        ({"train": {"name": 3}}, "config key 'train.name': expected a string"),
        ({"model": {"out_size": [1, 2, 3]}}, "config key 'model.out_size': expected 2 values"),
        (
            {"model": {"planes": {"resolutions": [64, "x"]}}},
            "config key 'model.planes.resolutions[1]': expected an integer",
        ),
        (
            {"model": {"planes": {"aggregation": "max"}}},
            "config key 'model.planes.aggregation': expected one of 'sum', 'mean', 'concat'",
        ),
        ({"model": 3}, "model: expected a mapping"),
        ({"train": {"lr": -1.0}}, "train: lr must be positive"),
        ({"train": {"loss_weights": {"photo": "big"}}}, "config key 'train.loss_weights.photo': expected a number"),
    ],
)
def test_from_dict_errors_name_the_key(d, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(Config, d)
    assert isinstance(info.value, S3DError)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_from_dict_required_field():
    with pytest.raises(ConfigError, match="config key 'size' is required"):
        config_from_dict(NeedsValue, {})
    assert config_from_dict(NeedsValue, {"size": 3}).size == 3


def test_overrides_parse_with_field_types():
    cfg = Config()
    new = apply_overrides(
        cfg,
        [
            "model.planes.channels=16",
            "train.lr=3e-4",
            "train.steps=100",
            "train.amp=true",
            "model.planes.resolutions=32,64,128",
            "model.out_size=(128, 128)",
            "train.name=a=b",
            "model.planes.aggregation=mean",
            "train.eval_every=25",
            'train.loss_weights={"photo": 1, "sync": 0.5}',
        ],
    )
    assert cfg == Config()  # the original is untouched
    assert new.model.planes.channels == 16
    assert new.train.lr == 3e-4 and new.train.steps == 100 and new.train.amp is True
    assert new.model.planes.resolutions == (32, 64, 128)
    assert new.model.out_size == (128, 128)
    assert new.train.name == "a=b"  # only the first '=' splits
    assert new.model.planes.aggregation == "mean"
    assert new.train.eval_every == 25
    assert new.train.loss_weights == {"photo": 1.0, "sync": 0.5}
    assert apply_overrides(new, ["train.eval_every=none"]).train.eval_every is None
    for text, want in [("0", False), ("1", True), ("False", False), ("yes", True)]:
        assert apply_overrides(cfg, [f"train.amp={text}"]).train.amp is want
    assert apply_overrides(cfg, ["model.planes.resolutions=64"]).model.planes.resolutions == (64,)
    assert apply_overrides(cfg, ["model.planes.resolutions="]).model.planes.resolutions == ()
    assert apply_overrides(cfg, ["train.steps=1e3"]).train.steps == 1000


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.planes.chanels=3", "unknown config key 'model.planes.chanels'; did you mean model.planes.channels"),
        ("train.learning_rate=1", "unknown config key 'train.learning_rate'"),
        ("channels=3", "did you mean model.planes.channels"),
        ("model.hidden.x=3", "'model.hidden' is a value, not a section"),
        ("model.planes=3", "config key 'model.planes' is a section"),
        ("train.steps=ten", "config key 'train.steps': expected an integer, got 'ten'"),
        ("train.steps=2.5", "expected an integer"),
        ("train.amp=maybe", "config key 'train.amp': expected true or false"),
        ("train.lr=fast", "config key 'train.lr': expected a number"),
        ("train.lr=-1", "config key 'train.lr': lr must be positive"),
        ("model.out_size=1,2,3", "config key 'model.out_size': expected 2 comma-separated values"),
        ("model.planes.aggregation=max", "expected one of sum, mean, concat"),
        ("train.eval_every=often", "cannot read 'often'"),
        ("train.steps", "is not of the form key=value"),
    ],
)
def test_override_errors(override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_reject_a_single_string():
    with pytest.raises(TypeError):
        apply_overrides(Config(), "train.lr=1")


def test_format_and_flatten():
    cfg = apply_overrides(Config(), ["train.eval_every=5"])
    text = format_config(cfg)
    assert text.splitlines()[:5] == [
        "model:",
        "  planes:",
        "    channels: 32",
        "    resolutions: [64, 128]",
        "    aggregation: sum",
    ]
    assert "  amp: false" in text and "  eval_every: 5" in text and "  lr: 0.001" in text
    flat = flatten_config(cfg)
    assert flat["model.planes.channels"] == 32 and flat["train.eval_every"] == 5
    assert list(flat) == config_keys(Config)


@dataclass
class WithComputed:
    width: int = 2
    area: int = field(init=False, default=0)

    def __post_init__(self):
        self.area = self.width * self.width


def test_computed_fields_round_trip():
    cfg = apply_overrides(WithComputed(), ["width=3"])
    assert cfg.area == 9
    d = config_to_dict(cfg)
    assert d == {"width": 3, "area": 9}
    assert config_from_dict(WithComputed, d) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'area'"):
        apply_overrides(cfg, ["area=4"])


def test_works_on_mutable_dataclasses_too():
    @dataclass
    class Small:
        n: int = 1

    s = Small()
    t = apply_overrides(s, ["n=4"])
    assert t.n == 4 and s.n == 1 and dataclasses.is_dataclass(t)
