"""``keep_photo``: frames show the source itself wherever the speech does not move the face,
and the model's frame only inside ``mouth.speech_region`` (the opening, the lips and jaw)."""

import dataclasses

import torch
from model_helpers import tiny_config
from test_model import _inputs

from s3d_fast.model import S3DNeRF
from s3d_fast.model.mouth import OPENING_FULL, speech_region


def _opening_model():
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mouth_cavity=True, cavity_opening=True))
    model = S3DNeRF(cfg.model).eval()
    with torch.no_grad():
        model.decoder.mlp[-1].weight.mul_(30)  # an opaque head
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
    return model


def test_region_is_empty_for_a_closed_mouth_and_grows_more_down_than_up():
    r, size = 48, 96
    assert speech_region(torch.zeros(2, 1, r, r), size).abs().max() == 0
    share = torch.zeros(1, 1, r, r)
    share[0, 0, 20, 24] = OPENING_FULL  # one open pixel
    region = speech_region(share, size)[0, 0]
    assert region.shape == (size, size) and region.min() >= 0 and region.max() <= 1
    rows = torch.nonzero(region[:, size // 2] > 0.5).squeeze(1).float() / 2  # back to NeRF pixels
    assert rows.min() < 20 < rows.max()
    assert rows.max() - 20 > 1.5 * (20 - rows.min())  # the jaw drops below the mouth


def test_silent_frames_are_the_photo_and_an_open_mouth_is_painted_by_the_model():
    model = _opening_model()
    img, mask, c2w, K, mel = _inputs(model.cfg, T=1)
    kept = model.prepare_source(img, mask, keep_photo=True)
    plain = model.prepare_source(img, mask)
    tokens = model.audio_tokens(mel)
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(-30.0)  # share 0: nothing opens
        closed = model.render_frames(model.bake(kept), tokens[0], c2w[0], K[0])
        torch.testing.assert_close(closed["rgb"], img.expand_as(closed["rgb"]), atol=0, rtol=0)
        closed_plain = model.render_frames(model.bake(plain), tokens[0], c2w[0], K[0])
        assert (closed_plain["rgb"] - img).abs().mean() > 0.05  # without it, the model paints the frame
        model.deformation.cavity_head.bias.fill_(30.0)  # share 1 on the head: all of it opens
        opened = model.render_frames(model.bake(kept), tokens[0], c2w[0], K[0])
        opened_plain = model.render_frames(model.bake(plain), tokens[0], c2w[0], K[0])
    head = closed["opacity"][0] > 0.999
    assert head.sum() > 10
    core = -torch.nn.functional.max_pool2d(-head[None, None].float(), 5, stride=1, padding=2)  # away from the rim
    assert core.sum() > 4
    inside = torch.nn.functional.interpolate(core, size=img.shape[-2:])[0, 0] > 0.5
    # Where the whole head opens, the model's (opened) frame shows; far outside it, the photo.
    torch.testing.assert_close(opened["rgb"][0][:, inside], opened_plain["rgb"][0][:, inside], atol=1e-5, rtol=0)


def test_outside_the_speech_region_the_photo_shows_unchanged():
    model = _opening_model()
    cfg = model.cfg
    img, mask, _, _, _ = _inputs(cfg, T=1)
    r, C = cfg.nerf_resolution, cfg.feature_channels
    rendered = torch.rand(r * r, C + 4)
    opacity = torch.rand(r * r, 1)
    share = torch.zeros(1, 1, r, r)
    share[..., r // 2 - 2 : r // 2 + 2, r // 2 - 2 : r // 2 + 2] = 1.0  # an open mouth
    kept = model.prepare_source(img, mask, keep_photo=True)
    with torch.no_grad():
        out = model._finish(kept, rendered, opacity, 1, 1, torch.zeros(()), None, share)["rgb"][0, 0]
        plain = model._finish(model.prepare_source(img, mask), rendered, opacity, 1, 1, torch.zeros(()), None, share)
    region = speech_region(share, out.shape[-1])[0, 0]
    assert 0 < (region > 0).float().mean() < 0.6
    torch.testing.assert_close(out[:, region == 0], img[0][:, region == 0], atol=0, rtol=0)
    full = region == 1
    assert full.sum() > 0
    torch.testing.assert_close(out[:, full], plain["rgb"][0, 0][:, full], atol=0, rtol=0)


def test_training_style_render_keeps_the_photo_too():
    model = _opening_model()
    img, mask, c2w, K, mel = _inputs(model.cfg, T=2)
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(-30.0)
        out = model.render(model.prepare_source(img, mask, keep_photo=True), model.audio_tokens(mel), c2w, K)
    torch.testing.assert_close(out["rgb"][0], img.expand(2, *img.shape[1:]), atol=0, rtol=0)


def test_an_opening_far_from_the_lips_is_not_shown():
    model = _opening_model()
    cfg = model.cfg
    img, mask, _, _, _ = _inputs(cfg, T=1)
    R = cfg.input_resolution
    mask[:, R // 2 : R // 2 + 2, R // 2 - 3 : R // 2 + 3] = 2  # lips in the middle
    r, C = cfg.nerf_resolution, cfg.feature_channels
    share = torch.zeros(1, 1, r, r)
    share[..., :3, :3] = 1.0  # an "opening" in the top-left corner, nowhere near them
    share[..., r // 2 : r // 2 + 2, r // 2 - 1 : r // 2 + 1] = 1.0  # and one at the lips
    source = model.prepare_source(img, mask, keep_photo=True)
    with torch.no_grad():
        out = model._finish(source, torch.rand(r * r, C + 4), torch.rand(r * r, 1), 1, 1, torch.zeros(()), None, share)
    rgb = out["rgb"][0, 0]
    corner = slice(0, R // 8)
    torch.testing.assert_close(rgb[:, corner, corner], img[0][:, corner, corner], atol=0, rtol=0)
    assert (rgb - img[0])[:, R // 2 - 2 : R // 2 + 4, R // 2 - 2 : R // 2 + 2].abs().max() > 1e-3


def test_a_photo_rendered_at_its_camera_marches_only_the_rays_it_can_show(monkeypatch):
    from s3d_fast.model.realtime import RealTimeRendering

    model = _opening_model()
    cfg = model.cfg
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    R, r = cfg.input_resolution, cfg.nerf_resolution
    mask[:, R // 2 : R // 2 + 2, R // 2 - 3 : R // 2 + 3] = 2  # lips
    g = 8
    geometry = (torch.zeros(1, 3, g, g), torch.zeros(1, 1, g, g))  # a photo that stays put when turned
    source = model.prepare_source(img, mask, c2w[:, 0], K, keep_photo=True, geometry=geometry)
    shown = model._shown_rays(source, r)
    assert 0 < shown.numel() < r * r // 2
    tokens = model.audio_tokens(mel)[0]
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(30.0)  # the whole head opens: the region is the limit
        baked = model.bake(source)
        some = model.render_frames(baked, tokens, c2w[0], K[0])
        monkeypatch.setattr(RealTimeRendering, "_shown_rays", lambda self, source, r: None)
        every = model.render_frames(baked, tokens, c2w[0], K[0])
    assert (every["rgb"] - img).abs().max() > 1e-2  # the model's frame shows somewhere
    torch.testing.assert_close(some["rgb"], every["rgb"], atol=2e-3, rtol=0)


def test_the_rest_is_the_widest_opening_any_quiet_input_shows():
    """Checkpoints differ in which quiet input they read as closed (digital silence or a
    quiet room), so neither may open a kept photo's mouth."""
    model = _opening_model()
    img, mask, c2w, K, mel = _inputs(model.cfg, T=2)
    source = model.prepare_source(img, mask, c2w[:, 0], K, keep_photo=True)
    tokens = model.audio_tokens(mel)[0]
    tokens = torch.stack([tokens[0], -100 * tokens[1]])  # two inputs far apart
    with torch.no_grad():
        baked = model.bake(source)
        alone = [model.at_rest(baked, tokens[i : i + 1]).source.rest_share for i in range(2)]
        both = model.at_rest(baked, tokens).source.rest_share
    for wider, narrower in (alone, alone[::-1]):  # each input opens it wider somewhere
        assert (wider - narrower).max() > 1e-3
    torch.testing.assert_close(both, torch.maximum(alone[0], alone[1]))


def test_what_is_open_at_rest_stays_the_photo():
    model = _opening_model()
    img, mask, c2w, K, mel = _inputs(model.cfg, T=2)
    source = model.prepare_source(img, mask, c2w[:, 0], K, keep_photo=True)
    tokens = model.audio_tokens(mel)[0]
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(30.0)  # open everywhere, whatever the speech
        baked = model.bake(source)
        opened = model.render_frames(baked, tokens, c2w[0], K[0])
        rested = model.at_rest(baked, tokens[:1])
        assert rested.source.rest_share.shape == (1, 1, model.cfg.nerf_resolution, model.cfg.nerf_resolution)
        kept = model.render_frames(rested, tokens, c2w[0], K[0])
    assert (opened["rgb"] - img).abs().max() > 0.05  # open from the start: painted by the model
    # No more open than at rest: the photo (reprojected to its own camera: equal to rounding).
    torch.testing.assert_close(kept["rgb"], img.expand_as(kept["rgb"]), atol=1e-4, rtol=0)
