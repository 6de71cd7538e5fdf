"""A config with absurd sizes is one clear error before any module is built: from the
command line, and from a checkpoint's config.json (which once hung `s3d-fast render`)."""

import dataclasses
import json
import math
import shutil

import pytest

from s3d_fast.cli import main
from s3d_fast.config import ConfigError, check_model_config, small
from s3d_fast.model import S3DNeRF
from s3d_fast.render import api

ABSURD = [
    ("nerf_resolution", 0),
    ("nerf_resolution", -5),
    ("output_resolution", 32),  # below the NeRF resolution: super-resolution only enlarges
    ("encoder_width", 10**6),
    ("bake_resolution", 10**5),
    ("hash_log2_size", 40),
    ("feature_channels", 2),
    ("max_offset", math.nan),
    ("early_stop_eps", 1.5),
    ("plane_resolutions", ()),
]


@pytest.mark.parametrize("key, value", ABSURD, ids=[f"{k}={v}" for k, v in ABSURD])
def test_absurd_sizes_are_refused_before_a_module_is_built(key, value):
    model = dataclasses.replace(small().model, **{key: value})
    with pytest.raises(ConfigError, match=f"model.{key}"):
        check_model_config(model)
    with pytest.raises(ConfigError, match=f"model.{key}"):
        S3DNeRF(model)


def test_a_checkpoint_with_an_absurd_size_is_one_line_not_a_hang(tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(api.DEMO_CHECKPOINT, checkpoint)
    meta = json.loads((checkpoint / "config.json").read_text())
    meta["config"]["model"]["nerf_resolution"] = 0
    (checkpoint / "config.json").write_text(json.dumps(meta))
    out = tmp_path / "out.mp4"
    assert main(["render", "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.nerf_resolution must be from 1" in err, err
    assert not out.exists()


def test_every_number_of_the_schema_has_a_range():
    """A field added later without a range fails here, so one schema keeps covering all."""
    from s3d_fast.config.schema import RANGES, LossConfig, ModelConfig, TrainConfig

    for section, cls in (("model", ModelConfig), ("loss", LossConfig), ("train", TrainConfig)):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float", int, float):
                assert f.name in RANGES[section], f"{section}.{f.name} has no range in config/schema.py"


BAD_TRAINING = [
    ("train", "steps", -5),
    ("train", "batch_size", 0),
    ("train", "checkpoint_every", 0),
    ("train", "lr", math.nan),
    ("train", "sync_lr", math.inf),
    ("train", "grad_clip", 0.0),
    ("train", "source_mouth_quantile", 0.0),
    ("loss", "sync", -1.0),
    ("loss", "photometric", math.nan),
]


@pytest.mark.parametrize("section, key, value", BAD_TRAINING, ids=[f"{s}.{k}={v}" for s, k, v in BAD_TRAINING])
def test_bad_training_values_are_refused(section, key, value):
    from s3d_fast.config import check_config

    cfg = small()
    setattr(getattr(cfg, section), key, value)
    with pytest.raises(ConfigError, match=f"{section}.{key} must be"):
        check_config(cfg)
    check_config(small())  # the presets themselves pass
