"""SynthTalk's photo style: determinism, the mouth interior (teeth shown when open, hidden
when closed), head turns to 45 degrees, a textured scene, labels that match the pixels,
and a data set that records its style while the classic style's record stays as it was."""

import dataclasses
import json

import numpy as np
import pytest

from s3d_fast.cli import main
from s3d_fast.data.dataset import load_manifest
from s3d_fast.data.synthtalk import camera, head, photo_render, visemes
from s3d_fast.data.synthtalk.generate import SynthConfig, light_direction, make_clip, source_record
from s3d_fast.data.synthtalk.generate import render_view as classic_render_view
from s3d_fast.data.synthtalk.identity import sample_identity
from s3d_fast.data.synthtalk.photo_identity import sample_photo_identity


def _render(ident, look, jaw=0.0, yaw=0.0, size=128, augment=None):
    pose = camera.pose(yaw, 0.0, 0.0)
    c2w = np.linalg.inv(pose) @ camera.front_camera()
    state = head.FrameState(jaw=jaw)
    K = camera.intrinsics(size)
    augment = augment or photo_render.Augment()
    return photo_render.render_view(ident, look, state, pose, c2w, K, size, light_direction(ident), 1, augment)


def _teeth_like(rgb):
    """Bright, nearly colourless pixels: enamel (skin, lips, tongue and cavity are all redder)."""
    x = rgb.astype(float) / 255.0
    value, low = x.max(-1), x.min(-1)
    return (value > 0.45) & ((value - low) / np.maximum(value, 1e-6) < 0.2)


def test_photo_render_is_deterministic():
    ident, look = sample_photo_identity(3)
    again_ident, again_look = sample_photo_identity(3)
    assert ident.summary() == again_ident.summary() and look.summary() == again_look.summary()
    aug = photo_render.Augment(grain=0.01, vignette=0.2)
    a_rgb, a_lab = _render(ident, look, jaw=0.5, yaw=20, size=64, augment=aug)
    b_rgb, b_lab = _render(again_ident, again_look, jaw=0.5, yaw=20, size=64, augment=aug)
    assert np.array_equal(a_rgb, b_rgb) and np.array_equal(a_lab, b_lab)
    other = sample_photo_identity(4)
    assert not np.array_equal(_render(*other, jaw=0.5, yaw=20, size=64, augment=aug)[0], a_rgb)


def test_photo_clip_is_deterministic_from_the_seed():
    config = SynthConfig(identities=1, clips=1, seconds=0.2, size=32, views=1, heldout=0, style="photo")
    ident, look = sample_photo_identity(0)
    a = make_clip(ident, [0, ident.seed, 0], config, look=look)
    b = make_clip(ident, [0, ident.seed, 0], config, look=look)
    assert np.array_equal(a["frames"], b["frames"]) and np.array_equal(a["view_frames"], b["view_frames"])
    assert np.array_equal(a["meta"]["masks"], b["meta"]["masks"])
    c = make_clip(ident, [0, ident.seed, 1], config, look=look)
    assert not np.array_equal(a["frames"], c["frames"])
    with pytest.raises(ValueError, match="look"):
        make_clip(ident, [0, ident.seed, 0], config)


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_teeth_show_when_the_mouth_opens_and_hide_when_it_closes(seed):
    ident, look = sample_photo_identity(seed)
    open_rgb, open_lab = _render(ident, look, jaw=0.9)
    closed_rgb, closed_lab = _render(ident, look, jaw=0.0)
    ys, xs = np.nonzero(open_lab >= 2)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    teeth_open = _teeth_like(open_rgb[box]) & (open_lab[box] == 3)
    assert teeth_open.sum() >= 8, teeth_open.sum()
    # Teeth lie inside the labelled interior, with dark cavity or red tongue around them.
    assert (open_lab[box] == 3).sum() > 2 * teeth_open.sum()
    assert (closed_lab == 3).sum() <= 2
    assert _teeth_like(closed_rgb[box]).sum() <= 1


def test_lower_teeth_travel_with_the_jaw():
    ident, look = sample_photo_identity(0)
    lowest = []
    for jaw in (0.5, 1.0):
        rgb, lab = _render(ident, look, jaw=jaw, size=160)
        rows = np.nonzero((_teeth_like(rgb) & (lab == 3)).any(1))[0]
        lowest.append(rows.max())
    assert lowest[1] > lowest[0]


def test_head_turns_reach_45_degrees_of_yaw_with_modest_pitch():
    times = np.arange(75) / 25.0
    tracks = [visemes.head_turns(np.random.default_rng(k), times) for k in range(40)]
    yaw = np.concatenate([t[:, 0] for t in tracks])
    pitch = np.concatenate([t[:, 1] for t in tracks])
    assert np.abs(yaw).max() <= 45.0 and np.abs(pitch).max() <= 12.0
    assert yaw.max() > 40.0 and yaw.min() < -40.0
    assert np.mean(np.abs(yaw) > 20.0) > 0.3  # turned heads are common, not rare


def test_background_is_textured_not_flat():
    for seed in range(4):
        ident, look = sample_photo_identity(seed)
        rgb, lab = _render(ident, look, size=96)
        scene = rgb[lab == 0].astype(float)
        assert scene.std(0).max() > 8.0 and len(np.unique(scene, axis=0)) > 200
    classic = sample_identity(0)
    K = camera.intrinsics(96)
    c_rgb, c_lab = classic_render_view(
        classic, head.FrameState(), camera.front_camera(), K, 96, light_direction(classic)
    )
    assert c_rgb[c_lab == 0].std(0).max() == 0.0  # the classic backdrop is flat, the photo one is not


def test_labels_match_what_the_pixels_show():
    ident, look = sample_photo_identity(1)
    rgb, lab = _render(ident, look, jaw=0.6, yaw=30)
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    # Recolouring the scene or the clothes changes label-0 pixels only; the hair, label 1 only.
    scene = dataclasses.replace(look, scene_colors=tuple([0.9 - c for c in col] for col in look.scene_colors))
    clothes = dataclasses.replace(look, clothing=(0.9, 0.1, 0.1), clothing_pattern="plain")
    hair = dataclasses.replace(ident, hair_color=(0.9, 0.9, 0.2))
    for variant_ident, variant_look, label in ((ident, scene, 0), (ident, clothes, 0), (hair, look, 1)):
        other, other_lab = _render(variant_ident, variant_look, jaw=0.6, yaw=30)
        assert np.array_equal(other_lab, lab)
        changed = (other != rgb).any(-1)
        assert changed.sum() > 100 and (lab[changed] == label).all()
    # The shoulders are in the picture (label 0, below the head) and the interior sits within the lips.
    assert (lab[-10:] == 0).all() and clothes_differ_at_the_bottom(ident, look, clothes)
    ys, xs = np.nonzero(lab == 3)
    ly, lx = np.nonzero(lab == 2)
    assert ly.min() <= ys.min() and ys.max() <= ly.max() and lx.min() <= xs.min() and xs.max() <= lx.max()


def clothes_differ_at_the_bottom(ident, look, clothes):
    a, _ = _render(ident, look, jaw=0.6, yaw=30)
    b, _ = _render(ident, clothes, jaw=0.6, yaw=30)
    return (a[-8:] != b[-8:]).any(-1).mean() > 0.3


def test_photo_identities_have_no_hats_and_few_glasses():
    looks = [sample_photo_identity(i) for i in range(60)]
    assert all("hat" not in ident.accessories for ident, _ in looks)
    glasses = np.mean(["glasses" in ident.accessories for ident, _ in looks])
    classic = np.mean(["glasses" in sample_identity(i).accessories for i in range(60)])
    assert glasses < 0.3 and glasses < classic
    assert len({look.hair_style for _, look in looks}) >= 5 and len({look.scene for _, look in looks}) == 3


def test_the_style_is_recorded_and_the_classic_record_is_unchanged(tmp_path):
    classic = source_record(SynthConfig())
    assert "style" not in classic and "style" not in classic["config"]
    photo = source_record(SynthConfig(style="photo"))
    assert photo["style"] == {"name": "photo", "version": 1} and photo["config"]["style"] == "photo"
    out = tmp_path / "ds"
    args = ["synth", "--identities", "1", "--clips", "1", "--seconds", "0.2", "--size", "32", "--views", "1"]
    assert main(args + ["--quiet", "--workers", "1", "--style", "photo", "--out", str(out)]) == 0
    m = load_manifest(out)
    assert m.source["style"] == {"name": "photo", "version": 1}
    assert "look" in json.loads((out / "manifest.json").read_text())["identities"][0]
    with np.load(m.path(m.clips[0]["meta"]), allow_pickle=False) as z:
        assert str(z["style"]) == "photo" and int(z["style_version"]) == 1 and z["augment"].shape == (8,)
        assert set(np.unique(z["masks"])) <= {0, 1, 2, 3}
    # The same folder refuses the other style instead of mixing them.
    assert main(args + ["--quiet", "--workers", "1", "--out", str(out)]) != 0
