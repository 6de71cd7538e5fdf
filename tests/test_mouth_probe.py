"""tools/mouth_probe.py: the jaw followed through a checkpoint, at toy sizes."""

import numpy as np
import pytest
import torch
from model_helpers import make_tiny_synthtalk, tiny_config
from tool_loader import load_tool

from s3d_fast.checkpoint import RunDirectory, save_checkpoint
from s3d_fast.config import config_to_dict
from s3d_fast.data.dataset import ClipStore, load_manifest
from s3d_fast.model import GENERATOR_KIND as KIND
from s3d_fast.model import S3DNeRF, load_model

mouth_probe = load_tool("mouth_probe")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    make_tiny_synthtalk(root / "ds")
    cfg = tiny_config()
    torch.manual_seed(0)
    path = RunDirectory(root / "run").checkpoint_path(3)
    save_checkpoint(
        path, model_state=S3DNeRF(cfg.model).state_dict(), config=config_to_dict(cfg), step=3, extra={"kind": KIND}
    )
    return root / "ds", path


def test_ridge_probe_reads_a_linear_signal_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12))
    y = x @ rng.normal(size=12) + 0.05 * rng.normal(size=400)
    read = mouth_probe.ridge_probe(x[:300], y[:300])
    assert np.corrcoef(read(x[300:]), y[300:])[0, 1] > 0.99
    noise = rng.normal(size=400)
    assert abs(np.corrcoef(mouth_probe.ridge_probe(x[:300], noise[:300])(x[300:]), noise[300:])[0, 1]) < 0.3


def test_features_are_what_super_resolution_saw(setup):
    data_dir, path = setup
    model = load_model(path)
    manifest = load_manifest(data_dir)
    data = ClipStore(manifest).get(manifest.clips_in("heldout")[0])
    rgb, features, cavity = mouth_probe.render_with_features(model, data, 7, batch=3)
    cfg = model.cfg
    assert rgb.shape == (7, 3, cfg.output_resolution, cfg.output_resolution)
    assert features.shape == (7, cfg.feature_channels + 4, cfg.nerf_resolution, cfg.nerf_resolution)
    # The offset channel is the rendered offset over max_offset: within [-1, 1].
    assert features[:, mouth_probe.OFFSET_Y].abs().max() <= 1.0
    assert cavity is None  # this model has no mouth cavity
    # The hook is gone: super-resolution runs alone again.
    assert not model.superres._forward_pre_hooks


def test_main_prints_a_row_per_clip_and_refuses_bad_arguments(setup, capsys):
    data_dir, path = setup
    assert mouth_probe.main(["--checkpoint", str(path), "--data", str(data_dir), "--frames", "8"]) == 0
    out = capsys.readouterr().out
    held = [c["id"] for c in load_manifest(data_dir).clips_in("heldout")]
    assert all(f"| {cid} |" in out for cid in held) and "**mean**" in out
    assert mouth_probe.main(["--checkpoint", str(path), "--data", str(data_dir), "--clips", "1"]) == 1
    assert "at least 2" in capsys.readouterr().err


def test_a_model_with_the_cavity_gets_its_column(setup, tmp_path, capsys):
    import dataclasses

    data_dir, _ = setup
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mouth_cavity=True))
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model)
    with torch.no_grad():
        model.deformation.cavity_head.weight.normal_(0, 1.0)  # a share that varies with the audio
    path = RunDirectory(tmp_path / "run").checkpoint_path(3)
    save_checkpoint(path, model_state=model.state_dict(), config=config_to_dict(cfg), step=3, extra={"kind": KIND})
    manifest = load_manifest(data_dir)
    data = ClipStore(manifest).get(manifest.clips_in("heldout")[0])
    share = mouth_probe.render_with_features(load_model(path), data, 7, batch=3)[2].numpy()
    r = cfg.model.nerf_resolution
    assert share.shape == (7, r, r) and 0 <= share.min() and share.max() < 1 and share.std() > 0
    assert mouth_probe.main(["--checkpoint", str(path), "--data", str(data_dir), "--frames", "8"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "| clip | tokens | motion | field | cavity | output |"


def _cavity_checkpoint(path, scale: float):
    import dataclasses

    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mouth_cavity=True))
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model)
    with torch.no_grad():
        model.deformation.cavity_head.weight.normal_(0, scale)
    save_checkpoint(path, model_state=model.state_dict(), config=config_to_dict(cfg), step=3, extra={"kind": KIND})
    return model


def test_several_checkpoints_get_a_row_each_and_average_into_one_model(setup, tmp_path, capsys):
    data_dir, plain = setup
    a = _cavity_checkpoint(tmp_path / "a", 1.0)
    b = _cavity_checkpoint(tmp_path / "b", 3.0)
    mean = mouth_probe.averaged_model([str(tmp_path / "a"), str(tmp_path / "b")])
    for name, value in mean.state_dict().items():
        assert torch.allclose(value, (a.state_dict()[name] + b.state_dict()[name]) / 2), name

    base = ["--data", str(data_dir), "--frames", "8", "--clips", "2", "--fit-clips", "2"]
    both = ["--checkpoint", str(tmp_path / "a"), "--checkpoint", str(plain)]
    assert mouth_probe.main(base + both) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| checkpoint | tokens | motion | field | cavity | output |"
    assert lines[2].startswith(f"| {tmp_path / 'a'} |") and lines[3].startswith(f"| {plain} |")
    assert lines[3].split("|")[-3].strip() == "-"  # the model without the cavity has no cavity column
    averaged = ["--checkpoint", str(tmp_path / "a"), "--checkpoint", str(tmp_path / "b"), "--average"]
    assert mouth_probe.main(base + averaged) == 0
    lines = capsys.readouterr().out.splitlines()  # one model: its table per clip
    assert lines[0] == "| clip | tokens | motion | field | cavity | output |" and lines[-1].startswith("| **mean** |")


def test_open_mouth_cuts_the_opening_into_the_frames(setup, tmp_path, monkeypatch):
    data_dir, _ = setup
    _cavity_checkpoint(tmp_path / "a", 3.0)
    manifest = load_manifest(data_dir)
    data = ClipStore(manifest).get(manifest.clips_in("heldout")[0])
    model = load_model(tmp_path / "a")
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(4.0)  # a share above the opening's threshold
    closed = mouth_probe.render_with_features(model, data, 5, batch=5)[0]
    model.cfg.cavity_opening = True
    opened = mouth_probe.render_with_features(model, data, 5, batch=5)[0]
    assert not torch.equal(closed, opened)

    seen = []  # what --open-mouth hands the probe
    monkeypatch.setattr(
        mouth_probe, "probe", lambda model, *args: seen.append(model.cfg.cavity_opening) or [{"clip": "c", "r": 0.0}]
    )
    base = ["--checkpoint", str(tmp_path / "a"), "--data", str(data_dir)]
    assert mouth_probe.main(base) == 0 and mouth_probe.main(base + ["--open-mouth"]) == 0
    assert seen == [False, True]
