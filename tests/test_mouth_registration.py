"""``register_mouth``: a kept photo's bake moves the model's mouth onto the photo's lips (the
source camera's principal point), so the speech opens the mouth the photo has, not a spot
above or beside it (docs/experiments.md, "The mouth on the photo's lips")."""

import dataclasses

import numpy as np
import pytest
import torch
from model_helpers import tiny_config
from registry_photos import group_photo
from test_model import _inputs

from s3d_fast.data import audio
from s3d_fast.model import S3DNeRF
from s3d_fast.model.mouth import lips_centre, opening_centre, opening_ramp
from s3d_fast.render.api import DEMO_SPEECH, Renderer, load_speech

FRAMES = 50  # 2 s of the demo sentence
CHANGED = 25  # a pixel differs from the photo by more than this (of 255) in some channel


def test_lips_centre_is_the_centre_of_the_lip_labels_in_pixels():
    mask = torch.zeros(2, 32, 32, dtype=torch.long)
    mask[0, 10:14, 20:30] = 2  # lips: rows 10-13, columns 20-29
    mask[1, 4:6, 2:4] = 3  # the mouth's interior counts too
    mask[1, 0:8, 0:8][mask[1, 0:8, 0:8] == 0] = 1  # skin does not
    centre = lips_centre(mask, torch.zeros(()))
    torch.testing.assert_close(centre, torch.tensor([[25.0, 12.0], [3.0, 5.0]]))
    assert lips_centre(None, torch.zeros(())) is None
    mask[1] = mask[1].clamp(max=1)
    assert lips_centre(mask, torch.zeros(())) is None  # a source without lips: nothing to register on


def test_opening_centre_is_the_largest_opening_not_a_stray_spot():
    opened = torch.zeros(64, 64)
    opened[40:45, 28:36] = 1.0  # the mouth: centre (32, 42.5)
    opened[42, 31] = 2.0  # its peak
    opened[58:60, 4:6] = 1.5  # a stray opening on the chin, brighter than most of the mouth
    centre = opening_centre(opened)
    weight = opened[38:47, 26:38]
    ys, xs = torch.meshgrid(torch.arange(38, 47) + 0.5, torch.arange(26, 38) + 0.5, indexing="ij")
    expected = torch.stack([(weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()])
    torch.testing.assert_close(centre, expected)
    assert opening_centre(torch.zeros(8, 8)) is None


def test_a_source_whose_frames_do_not_render_at_its_camera_is_not_registered():
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mouth_cavity=True, cavity_opening=True))
    model = S3DNeRF(cfg.model).eval()
    img, mask, c2w, K, mel = _inputs(cfg.model, T=1)
    mask[:, 20:24, 12:20] = 2
    source = model.prepare_source(img, mask, c2w[:, 0], K, keep_photo=True)  # no photo geometry
    assert source.lips_centre is not None
    tokens = model.audio_tokens(mel)[0]
    baked = model.at_rest(model.bake(source), tokens[:1])
    assert model.register_mouth(baked, tokens) is baked


@pytest.fixture(scope="module")
def looking_down():
    """Face 1 of the group photo: looking down at her cards, where the bundled model opens
    its mouth under her nose, a twelfth of the image above her lips, unless registered."""
    renderer = Renderer(device="cpu")
    identity = renderer.bake(group_photo(), face=1)
    return renderer, identity


def _opening_at(model, baked, tokens, camera):
    c2w, K = camera
    source = dataclasses.replace(baked.source, camera=camera, speech_limit=None)
    P = tokens.shape[0]
    with torch.inference_mode():
        probed = dataclasses.replace(baked, source=source)
        share = model.render_frames(probed, tokens, c2w.expand(P, 4, 4), K.expand(P, 3, 3))["cavity"]
    opened = opening_ramp(share - baked.source.rest_share[0]).sum(0)
    return opening_centre(opened) * (model.input_resolution / opened.shape[-1])


def test_the_model_opens_its_mouth_on_the_photos_lips(looking_down):
    renderer, identity = looking_down
    model, source = renderer.model, identity.baked.source
    shift = source.mouth_shift
    assert shift is not None and float(shift.norm()) > 10  # it was well off the lips
    tokens = renderer._opening_tokens()
    c2w, K = source.camera
    unmoved = K.clone()
    unmoved[:, :2, 2] -= shift
    lips = source.lips_centre[0]
    assert float((_opening_at(model, identity.baked, tokens, (c2w, K)) - lips).norm()) < 3
    assert float((_opening_at(model, identity.baked, tokens, (c2w, unmoved)) - lips).norm()) > 10


def test_a_registered_photo_is_still_the_photo_when_silent_and_speaks_on_its_lips(looking_down):
    _, identity = looking_down
    photo = identity.source.image.astype(np.int16)
    second = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    for quiet in (0.0 * second, audio.ROOM_NOISE_STD * second):  # a second of silence, of a quiet room
        silent = np.stack(list(identity.render(quiet)))
        assert np.abs(silent.astype(np.int16) - photo).max() <= 1  # moving the camera did not move the photo
    speech = load_speech(load_speech(DEMO_SPEECH).samples[: FRAMES * 640])  # 640 samples a frame at 16 kHz
    frames = np.stack(list(identity.render(speech))).astype(np.int16)
    changed = (np.abs(frames - photo).max(-1) > CHANGED).sum(0)
    assert changed.sum() > 0
    ys, xs = np.nonzero(identity.source.mask >= 2)
    size = changed.shape[0]
    rows = np.arange(size) + 0.5
    centre_y = (changed.sum(1) * rows).sum() / changed.sum()
    assert ys.min() <= centre_y <= ys.max() + 1  # what the speech changes is on her lips, not above them
