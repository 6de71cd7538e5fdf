"""Configs saved by earlier versions load through a versioned migration; a config from a
newer or unknown version is refused in one line."""

import json
from pathlib import Path

import pytest

from s3d_fast.cli import main
from s3d_fast.config import CONFIG_VERSION, ConfigError, config_to_dict, load_config, migrate, small
from s3d_fast.render import api


def version_1(cfg) -> dict:
    """``cfg`` as s3d-fast wrote it before the config had a version: no "version" key, and
    the three options that nothing read."""
    d = config_to_dict(cfg)
    del d["version"]
    d["loss"].update(perceptual=0.01, adversarial=0.0)
    d["train"]["workers"] = 0
    return d


def test_a_version_1_config_loads_with_every_other_value_kept():
    cfg = small()
    old = version_1(cfg)
    old["train"]["lr"] = 1.25e-3
    loaded = load_config(old)
    assert loaded.train.lr == 1.25e-3 and loaded.version == CONFIG_VERSION
    assert config_to_dict(loaded) == {**config_to_dict(cfg), "train": {**config_to_dict(cfg)["train"], "lr": 1.25e-3}}
    assert "perceptual" in old["loss"]  # the caller's dict is left as it was


def test_a_saved_version_1_config_loads():
    """The config the bundled checkpoint shipped with until its interior was trained
    (step 3559), as s3d-fast wrote it before configs had a version."""
    with open(Path(__file__).parent / "configs" / "demo_step3559_v1.json") as f:
        saved = json.load(f)
    assert "version" not in saved and "perceptual" in saved["loss"]
    loaded = load_config(saved)
    assert loaded.version == CONFIG_VERSION and loaded.model.cavity_opening and not loaded.model.mouth_interior


def test_the_bundled_demo_checkpoint_is_a_current_config():
    with open(api.DEMO_CHECKPOINT + "/config.json") as f:
        saved = json.load(f)["config"]
    assert saved["version"] == CONFIG_VERSION
    model = load_config(saved).model
    assert model.cavity_opening and model.mouth_interior and model.interior_alone


@pytest.mark.parametrize(
    "version, message",
    [
        (CONFIG_VERSION + 1, "newer than this s3d-fast reads"),
        (0, "not one this s3d-fast knows"),
        ("2", "not one this s3d-fast knows"),
        (True, "not one this s3d-fast knows"),
    ],
)
def test_a_config_of_an_unknown_version_is_refused(version, message):
    d = config_to_dict(small())
    d["version"] = version
    with pytest.raises(ConfigError, match=message):
        migrate(d)


def test_an_option_removed_in_version_2_is_unknown_in_a_version_2_config():
    d = config_to_dict(small())
    d["loss"]["perceptual"] = 0.01
    with pytest.raises(ConfigError, match="unknown config key 'loss.perceptual'"):
        load_config(d)


def test_a_run_folder_of_version_1_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": version_1(small())}))
    argv = ["train", "--data", str(tmp_path), "--out", str(run), "--resume", "--print-config", "--set", "train.lr=1e-3"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "lr: 0.001" in printed and "perceptual" not in printed and f"version: {CONFIG_VERSION}" in printed
