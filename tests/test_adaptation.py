"""Bake-time adaptation (``adapt_source``): a source's own tri-planes are refined so the
model redraws it at its camera; the trained weights and the rest of the source stay."""

import dataclasses

import numpy as np
import pytest
import torch
from model_helpers import tiny_config
from test_model import _inputs

from s3d_fast.model import S3DNeRF
from s3d_fast.model.adaptation import adapt_source
from s3d_fast.model.losses import resize
from s3d_fast.render.api import DEMO_IMAGE, Renderer
from s3d_fast.render.errors import RenderError


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = tiny_config().model
    model = S3DNeRF(cfg).eval()
    _, mask, c2w, K, mel = _inputs(cfg, T=1)
    # A smooth image: the untrained toy model can come close to it in a few steps.
    img = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4), size=cfg.input_resolution, mode="bilinear")
    with torch.inference_mode():  # as evaluation and rendering encode it
        source = model.prepare_source(img, mask, c2w[:, 0], K)
        rest = model.audio_tokens(mel)[0]
    return model, source, rest


def _redraw_errors(model, source, rest) -> tuple[float, float]:
    """L1 of the frame at the source camera to the source: the output, the field's own image."""
    with torch.no_grad():
        out = model.render(source, rest[None], source.camera[0][:, None], source.camera[1], stratified=False)
    low = resize(source.image, model.cfg.nerf_resolution)
    return float((out["rgb"][:, 0] - source.image).abs().mean()), float((out["rgb_low"][:, 0] - low).abs().mean())


def test_adapting_brings_the_frame_at_the_source_camera_closer_to_the_source(tiny):
    model, source, rest = tiny
    adapted, stats = adapt_source(model, source, rest, steps=20, lr=1.0)
    assert stats.steps == 20 and stats.seconds > 0
    assert stats.after < 0.9 * stats.before
    before, after = _redraw_errors(model, source, rest), _redraw_errors(model, adapted, rest)
    # The untrained toy super-resolution passes the source through; the field's image is what moves.
    assert after[1] < 0.7 * before[1]
    assert sum(after) == pytest.approx(stats.after, rel=1e-4)  # the reported figure is the loss of these frames


def test_only_the_sources_planes_change(tiny):
    model, source, rest = tiny
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    adapted, _ = adapt_source(model, source, rest, steps=3, lr=0.05)
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert grads == {n: p.requires_grad for n, p in model.named_parameters()}
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    model.train()
    try:
        adapt_source(model, source, rest, steps=1)
        assert model.training  # drawn in eval mode, handed back as it came
    finally:
        model.eval()
    for a, b in zip(adapted.features.planes, source.features.planes):
        assert not torch.equal(a[:, 0], b[:, 0])  # the xy plane, facing the camera
        torch.testing.assert_close(a[:, 1:], b[:, 1:], rtol=0, atol=0)  # the two it does not face
    assert all(not p.requires_grad for p in adapted.features.planes)
    every, _ = adapt_source(model, source, rest, steps=3, lr=0.05, front_only=False)
    assert all(not torch.equal(a[:, 1:], b[:, 1:]) for a, b in zip(every.features.planes, source.features.planes))
    assert adapted.slots is source.slots and adapted.image is source.image
    assert adapted.features.pyramid is source.features.pyramid


def test_the_conditioning_of_super_resolution_is_refined_only_when_asked(tiny):
    model, source, rest = tiny
    adapted, stats = adapt_source(model, source, rest, steps=3, lr=0.05, conditioning=True)
    assert stats.after < stats.before
    changed = [not torch.equal(adapted.features.pyramid[k], v) for k, v in source.features.pyramid.items()]
    assert any(changed)  # the levels super-resolution reads
    assert all(not v.requires_grad for v in adapted.features.pyramid.values())


def test_zero_steps_is_the_source_unchanged_and_a_time_limit_stops_early(tiny):
    model, source, rest = tiny
    same, stats = adapt_source(model, source, rest, steps=0)
    assert stats.steps == 0 and stats.before == stats.after
    assert all(torch.equal(a, b) for a, b in zip(same.features.planes, source.features.planes))
    _, stats = adapt_source(model, source, rest, steps=1000, seconds=0.0)
    assert stats.steps == 0


def test_each_step_is_reported_as_it_is_taken(tiny):
    model, source, rest = tiny
    reported = []
    _, stats = adapt_source(model, source, rest, steps=4, on_step=lambda done, steps: reported.append((done, steps)))
    assert reported == [(1, 4), (2, 4), (3, 4), (4, 4)] and stats.steps == 4


def test_a_source_without_its_camera_or_several_at_once_is_refused(tiny):
    model, source, rest = tiny
    with pytest.raises(ValueError, match="camera"):
        adapt_source(model, dataclasses.replace(source, camera=None), rest, steps=1)
    cfg = model.cfg
    img, mask, c2w, K, _ = _inputs(cfg, B=2, T=1)
    with torch.no_grad():
        two = model.prepare_source(img, mask, c2w[:, 0], K)
    with pytest.raises(ValueError, match="one source"):
        adapt_source(model, two, rest, steps=1)


def test_a_bake_adapted_to_the_demo_image_redraws_it_closer_when_silent():
    renderer = Renderer(None, "cpu")
    silence = np.zeros(16000 // 5, np.float32)  # 0.2 s
    errors = []
    for steps in (0, 5):
        identity = renderer.bake(DEMO_IMAGE, adapt_steps=steps)
        frame = next(iter(identity.render(silence)))  # the source camera, held still
        errors.append(np.abs(frame.astype(np.float64) - identity.source.image).mean())
    assert errors[1] < 0.95 * errors[0]
    with pytest.raises(RenderError, match="adapt_steps must be 0 or more"):
        renderer.bake(DEMO_IMAGE, adapt_steps=-1)


def test_a_kept_photo_turned_through_its_own_geometry_refines_every_plane(tiny):
    """Its frames are rendered only at its own camera, so the planes it does not face show
    nothing else; every other source keeps them."""
    model, source, rest = tiny
    g = 8
    photo = dataclasses.replace(source, photo_points=torch.zeros(1, 3, g, g), photo_anchor=torch.ones(1, 1, g, g))
    adapted, _ = adapt_source(model, photo, rest, steps=3, lr=0.05)
    assert all(not torch.equal(a[:, 1:], b[:, 1:]) for a, b in zip(adapted.features.planes, source.features.planes))
    assert adapted.photo_points is photo.photo_points  # what turns its frames is kept
