"""The assembled S^3D-NeRF generator at toy sizes: shapes, gradients, the audio path,
the baked real-time path against training-style rendering, checkpoints."""

import math

import pytest
import torch
from model_helpers import tiny_config

from s3d_fast.data.synthtalk import camera
from s3d_fast.model import S3DNeRF
from s3d_fast.model.mouth import mouth_keep_out
from s3d_fast.model.rays import box_intersection, camera_rays, importance_edges, stratified_edges


def _inputs(cfg, B=1, T=2):
    R = cfg.input_resolution
    img = torch.rand(B, 3, R, R)
    mask = torch.zeros(B, R, R, dtype=torch.long)
    mask[:, R // 4 : 3 * R // 4, R // 4 : 3 * R // 4] = 1
    c2w = torch.from_numpy(camera.front_camera()).float().expand(B, T, 4, 4).contiguous()
    K = torch.from_numpy(camera.intrinsics(R)).float().expand(B, 3, 3).contiguous()
    mel = torch.randn(B, T, 80, 16)
    return img, mask, c2w, K, mel


def test_render_shapes_and_every_parameter_learns():
    cfg = tiny_config().model
    model = S3DNeRF(cfg)
    img, mask, c2w, K, mel = _inputs(cfg, B=2, T=3)
    out = model(img, mask, model.audio_tokens(mel), c2w, K)
    r, Ro = cfg.nerf_resolution, cfg.output_resolution
    assert out["rgb"].shape == (2, 3, 3, Ro, Ro)
    assert out["rgb_low"].shape == (2, 3, 3, r, r)
    assert out["opacity"].shape == out["score"].shape == (2, 3, r, r)
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1
    assert (out["opacity"] >= 0).all() and (out["opacity"] <= 1 + 1e-5).all()
    loss = out["rgb"].mean() + out["rgb_low"].mean() + out["opacity"].mean() + out["score"].mean() + out["offset_sq"]
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    dead = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not dead, dead


def test_deformation_starts_small_and_is_bounded():
    cfg = tiny_config().model
    model = S3DNeRF(cfg)
    x = torch.rand(2, 50, 3) * 2 - 1
    slots = torch.randn(2, cfg.n_slots, cfg.slot_dim)
    offset, score, assign, cavity = model.deformation(x, slots)
    assert cavity is None  # off by default
    assert offset.abs().max() < 0.02 * cfg.max_offset  # near the identity map at initialisation
    assert torch.allclose(assign.sum(-1), torch.ones(2, 50))
    with torch.no_grad():
        model.deformation.head[-1].weight.normal_(0, 10.0)
    offset, score, _, _ = model.deformation(x, slots)
    assert offset.norm(dim=-1).max() <= cfg.max_offset * math.sqrt(3) + 1e-6
    assert ((score > 0) & (score < 1)).all()


def test_audio_changes_the_render_only_through_the_deformation():
    cfg = tiny_config().model
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():
        model.deformation.head[-1].weight.normal_(0, 10.0)
        model.deformation.head[-1].bias[3] = 5.0  # every point fully audio-driven
        model.decoder.mlp[-1].weight.mul_(30)  # a dense, textured volume for the offsets to move
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    src = model.prepare_source(img, mask)
    with torch.no_grad():
        a = model.render(src, model.audio_tokens(mel), c2w, K, stratified=False)
        b = model.render(src, model.audio_tokens(torch.zeros_like(mel)), c2w, K, stratified=False)
        assert (a["rgb_low"] - b["rgb_low"]).abs().max() > 1e-2
        assert (a["rgb"] - b["rgb"]).abs().max() > 0
        # With the deformation off, the audio cannot reach the image.
        model.deformation.head[-1].weight.zero_()
        model.deformation.head[-1].bias[:3].zero_()
        a = model.render(src, model.audio_tokens(mel), c2w, K, stratified=False)
        b = model.render(src, model.audio_tokens(torch.zeros_like(mel)), c2w, K, stratified=False)
    torch.testing.assert_close(a["rgb_low"], b["rgb_low"], atol=1e-5, rtol=0)


def test_the_source_camera_reaches_the_render_only_through_reprojection():
    """Training gives the model the source camera (``train.reproject_source``): seen from
    the source's own camera the reprojected source is the source, so the frame is the
    one rendered without a camera; from a turned camera the blended texture moves."""
    cfg = tiny_config().model
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():
        model.decoder.mlp[-1].weight.mul_(30)  # an opaque head, so pixels have a surface to reproject
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    tokens = model.audio_tokens(mel)
    source_c2w = c2w[:, 0]
    turned = torch.from_numpy(camera.free_view(c2w[0, 0].numpy(), 20.0, 5.0)).float().expand_as(c2w).contiguous()
    with torch.no_grad():
        same = model(img, mask, tokens, c2w, K, stratified=False, source_c2w=source_c2w)
        plain = model(img, mask, tokens, c2w, K, stratified=False)
        assert (same["opacity"] > 0.5).float().mean() > 0.1  # the check below has surface pixels to see
        torch.testing.assert_close(same["rgb"], plain["rgb"], atol=1e-4, rtol=0)
        moved = model(img, mask, tokens, turned, K, stratified=False, source_c2w=source_c2w)
        moved_plain = model(img, mask, tokens, turned, K, stratified=False)
        assert (moved["rgb"] - moved_plain["rgb"]).abs().max() > 1e-2
        torch.testing.assert_close(moved["rgb_low"], moved_plain["rgb_low"])  # the field itself never sees it


def test_mouth_keep_out_is_the_lips_grown_by_the_jaws_reach_and_nothing_without_them():
    R = 64
    mask = torch.ones(1, R, R, dtype=torch.long)
    mask[0, 20:22, 24:40] = 2  # lips
    like = torch.zeros(1, 3, R, R)
    # Grown 6 pixels down and 2 up and sideways (rows 18-27, columns 22-41), then softened
    # over 2 pixels either side of that border.
    keep = mouth_keep_out(mask, like, reach=6 / R)
    assert keep.shape == (1, 1, R, R)
    rows, cols = torch.nonzero(keep[0, 0] == 1, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 25, 24, 39)
    rows, cols = torch.nonzero(keep[0, 0] > 0, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 29, 20, 43)
    edge = keep[0, 0, 16:20, 30]
    assert (edge > 0).all() and (edge < 1).all() and (edge.diff() > 0).all()  # rising into the region
    assert mouth_keep_out(mask, like, reach=0.0) is None
    assert mouth_keep_out(None, like, reach=0.1) is None
    assert mouth_keep_out(torch.ones_like(mask), like, reach=0.1) is None  # a face without lip labels


def test_super_resolution_paints_the_keep_out_region_itself():
    """Inside the keep-out region the frame is the network's own colour, never the source."""
    cfg = tiny_config().model
    model = S3DNeRF(cfg).eval()
    sr = model.superres
    with torch.no_grad():
        sr.head[0].bias[:4].fill_(4.0)  # the blend logit (PixelShuffle takes channels 0-3 to output channel 0)
    F_, R = 2, cfg.output_resolution
    features = torch.rand(F_, cfg.feature_channels + 4, cfg.nerf_resolution, cfg.nerf_resolution)
    img = torch.rand(1, 3, cfg.input_resolution, cfg.input_resolution)
    pyramid = model.prepare_source(img).features.pyramid
    keep = torch.zeros(F_, 1, R, R)
    keep[:, :, R // 2 :, :] = 1.0
    captured = {}
    sr.head.register_forward_hook(lambda mod, args, out: captured.update(out=out))
    with torch.no_grad():
        out = sr(features, pyramid, img, F_, keep_out=keep)
        colour = torch.sigmoid(captured["out"][:, 1:])
        if colour.shape[-1] != R:
            colour = torch.nn.functional.interpolate(colour, size=(R, R), mode="bilinear", align_corners=False)
        free = sr(features, pyramid, img, F_)
    torch.testing.assert_close(out[..., R // 2 :, :], colour[..., R // 2 :, :])
    torch.testing.assert_close(out[..., : R // 2, :], free[..., : R // 2, :])
    assert (free[..., R // 2 :, :] - colour[..., R // 2 :, :]).abs().mean() > 0.05  # without it, the source shows


def test_the_keep_out_region_follows_the_source_into_each_view():
    import dataclasses

    cfg = dataclasses.replace(tiny_config().model, mouth_keep_out=0.05)
    model = S3DNeRF(cfg).eval()
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    R = cfg.input_resolution
    mask[:, R // 2 : R // 2 + 4, R // 3 : 2 * R // 3] = 2
    tokens = model.audio_tokens(mel)
    turned = torch.from_numpy(camera.free_view(c2w[0, 0].numpy(), 15.0, 0.0)).float().expand_as(c2w).contiguous()
    with torch.no_grad():
        kept = model(img, mask, tokens, turned, K, stratified=False, source_c2w=c2w[:, 0])
        model.cfg = dataclasses.replace(cfg, mouth_keep_out=0.0)
        free = model(img, mask, tokens, turned, K, stratified=False, source_c2w=c2w[:, 0])
    changed = (kept["rgb"] - free["rgb"]).abs().amax(dim=(0, 1, 2)) > 1e-6  # (H, W) pixels it changed
    rows = torch.nonzero(changed.any(1)).squeeze(1)
    assert rows.numel() > 0 and rows.min() >= R // 2 - 8 and rows.max() <= R // 2 + 12  # only around the lips


def test_the_keep_out_region_meets_an_output_resolution_other_than_the_input():
    import dataclasses

    cfg = dataclasses.replace(tiny_config().model, mouth_keep_out=0.05)
    cfg = dataclasses.replace(cfg, output_resolution=cfg.nerf_resolution * 2)
    assert cfg.output_resolution != cfg.input_resolution
    model = S3DNeRF(cfg).eval()
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    R = cfg.input_resolution
    mask[:, R // 2 : R // 2 + 4, R // 3 : 2 * R // 3] = 2
    with torch.no_grad():
        for source_c2w in (None, c2w[:, 0]):
            out = model(img, mask, model.audio_tokens(mel), c2w, K, stratified=False, source_c2w=source_c2w)
            assert out["rgb"].shape[-1] == cfg.output_resolution


def test_audio_tokens_take_whole_utterances():
    cfg = tiny_config().model
    model = S3DNeRF(cfg)
    mel = torch.randn(7, 80, 16)
    tokens = model.audio_tokens(mel)
    assert tokens.shape == (7, cfg.audio_tokens_per_frame, cfg.audio_dim)
    # Temporal context: a frame's tokens depend on its neighbours, not on distant frames.
    mel2 = mel.clone()
    mel2[6] = torch.randn(80, 16)
    t2 = model.audio_tokens(mel2)
    assert torch.allclose(tokens[: 6 - cfg.audio_context], t2[: 6 - cfg.audio_context], atol=1e-6)
    assert not torch.allclose(tokens[5], t2[5])
    with pytest.raises(ValueError, match="mel"):
        model.audio(torch.randn(80, 16))


def test_ray_mask_renders_background_elsewhere():
    cfg = tiny_config().model
    model = S3DNeRF(cfg)
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    r = cfg.nerf_resolution
    ray_mask = torch.zeros(1, 1, r, r, dtype=torch.bool)
    ray_mask[..., : r // 2, :] = True
    out = model(img, mask, model.audio_tokens(mel), c2w, K, ray_mask=ray_mask)
    assert out["opacity"][0, 0, r // 2 :].abs().max() == 0
    assert out["opacity"][0, 0, : r // 2].max() > 0
    outside = img * (mask == 0).float().unsqueeze(1)  # the source with its head masked out
    bg = torch.nn.functional.interpolate(outside, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(out["rgb_low"][0, 0, :, r // 2 :], bg[0, :, r // 2 :], atol=1e-6, rtol=0)


def test_rays_and_sample_placement():
    c2w = torch.from_numpy(camera.front_camera()).float()[None]
    K = torch.from_numpy(camera.intrinsics(8)).float()[None]
    o, d = camera_rays(c2w, K, 8)
    assert o.shape == d.shape == (1, 64, 3)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(1, 64))
    near, far = box_intersection(o[0], d[0])
    hits = far > near
    entry = o[0] + d[0] * near[:, None]
    assert (entry[hits].abs().max(-1).values - 1).abs().max() < 1e-4
    miss = torch.tensor([[0.0, 5.0, 4.0]]), torch.tensor([[0.0, 0.0, -1.0]])
    n, f = box_intersection(*miss)
    assert n.item() == f.item()
    edges = stratified_edges(near, far, 6, jitter=True)
    assert (edges[:, 1:] >= edges[:, :-1]).all()
    w = torch.zeros(64, 6)
    w[:, 2] = 1
    fine = importance_edges(edges, w, 10, deterministic=True)
    assert fine.shape == (64, 17) and (fine[:, 1:] >= fine[:, :-1]).all()
    inside = ((fine >= edges[:, 2:3]) & (fine <= edges[:, 3:4])).sum(-1)
    assert (inside[hits] >= 10).all()  # the new edges all land in the weighted interval


def test_baked_path_matches_training_style_render():
    cfg = tiny_config().model
    cfg.march_steps = 256
    cfg.bake_resolution = 32
    cfg.early_stop_eps = 0.0
    cfg.n_coarse, cfg.n_fine = 64, 64
    model = S3DNeRF(cfg).eval()
    # A head-like density: a ball, written into the decoder's bias path through the planes.
    with torch.no_grad():
        model.decoder.mlp[-1].bias[0] = 2.0
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    src = model.prepare_source(img, mask)
    tokens = model.audio_tokens(mel)
    baked = model.bake(src)
    assert 0 < baked.occupied_fraction <= 1
    frames = model.render_frames(baked, tokens[0], c2w[0], K[0])
    ref = model.render(src, tokens, c2w, K, stratified=False)
    assert frames["rgb"].shape == ref["rgb"][0].shape
    assert set(frames["timings"]) >= {"marching", "deformation", "decoder", "compositing", "super-resolution"}
    err = (frames["rgb"] - ref["rgb"][0]).abs().mean()
    assert err < 0.02, err


def test_real_time_path_stops_shading_opaque_rays_without_changing_the_frame():
    cfg = tiny_config().model
    cfg.march_steps, cfg.bake_resolution, cfg.early_stop_eps = 64, 32, 1e-3
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():  # a dense fog: optical depth ~1 per sample, opaque after ~7
        model.decoder.mlp[-1].bias[0] = 3.0
    img, mask, c2w, K, mel = _inputs(cfg, T=2)
    baked = model.bake(model.prepare_source(img, mask))
    tokens = model.audio_tokens(mel)[0]
    shaded = []
    hook = model.deformation.register_forward_hook(lambda mod, args, out: shaded.append(args[0].shape[1]))
    every = model.render_frames(baked, tokens, c2w[0], K[0], shade_rounds=())
    n_every = sum(shaded)
    shaded.clear()
    early = model.render_frames(baked, tokens, c2w[0], K[0])
    hook.remove()
    assert sum(shaded) < 0.6 * n_every, (sum(shaded), n_every)
    for key in ("rgb", "opacity", "score"):
        torch.testing.assert_close(early[key], every[key], rtol=0, atol=1e-5)


def test_checkpoint_round_trip_and_errors(tmp_path):
    from s3d_fast.checkpoint import save_checkpoint
    from s3d_fast.config import config_to_dict
    from s3d_fast.errors import S3DError
    from s3d_fast.model import load_model

    cfg = tiny_config()
    model = S3DNeRF(cfg.model)
    save_checkpoint(
        tmp_path / "ckpt",
        model_state=model.state_dict(),
        config=config_to_dict(cfg),
        step=3,
        extra={"kind": "generator"},
    )
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config.model == cfg.model and loaded.checkpoint_step == 3 and not loaded.training
    for (n, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), n
    save_checkpoint(
        tmp_path / "sync", model_state=model.state_dict(), config=config_to_dict(cfg), step=1, extra={"kind": "syncnet"}
    )
    with pytest.raises(S3DError, match="not an s3d-fast generator"):
        load_model(tmp_path / "sync")
    with pytest.raises(S3DError):
        load_model(tmp_path / "missing")
    state = model.state_dict()
    state["decoder.mlp.0.weight"] = torch.full_like(state["decoder.mlp.0.weight"], float("nan"))
    extra = {"kind": "generator"}
    save_checkpoint(tmp_path / "nan", model_state=state, config=config_to_dict(cfg), step=9, extra=extra)
    with pytest.raises(S3DError, match=r"weights hold NaN or infinite values \(decoder.mlp.0.weight\)"):
        load_model(tmp_path / "nan")


def test_source_image_shape_is_checked():
    cfg = tiny_config().model
    model = S3DNeRF(cfg)
    with pytest.raises(ValueError, match="source image"):
        model.prepare_source(torch.rand(1, 3, 32, 32))


def test_bake_carves_the_interior_and_dilates_by_the_offset_budget():
    cfg = tiny_config().model
    cfg.bake_resolution, cfg.bake_shell, cfg.max_offset = 32, 2, 0.0
    model = S3DNeRF(cfg).eval()
    ball = lambda planes, x: 50.0 * (x.norm(dim=-1) < 0.6).float()  # noqa: E731
    model.decoder.density = ball
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    src = model.prepare_source(img, mask)
    occ = model.bake(src).grid.binaries[0, 0]
    cells = (torch.arange(32) + 0.5) / 32 * 2 - 1
    r = torch.stack(torch.meshgrid(cells, cells, cells, indexing="ij"), -1).norm(dim=-1)
    # Erosion is by a cube: diagonal neighbours reach 2 * sqrt(3) cells deep.
    assert not occ[r < 0.6 - 4 * 2 / 32].any()  # deep inside: carved
    assert occ[(r < 0.6) & (r > 0.6 - 1 * 2 / 32)].all()  # the surface layer: kept
    assert not occ[r > 0.6 + 1e-6].any()
    model.cfg.max_offset = 0.25  # 4 cells of offset budget: the shell grows both ways
    occ = model.bake(src).grid.binaries[0, 0]
    assert occ[(r > 0.6) & (r < 0.6 + 3 * 2 / 32)].all()


def _ball_model(max_offset=0.25):
    """A tiny model whose canonical head is a ball of radius 0.6 with a colour gradient."""
    cfg = tiny_config().model
    cfg.bake_resolution, cfg.bake_shell, cfg.max_offset, cfg.march_steps = 32, 2, max_offset, 64
    model = S3DNeRF(cfg).eval()

    def ball(planes, x):
        sigma = 50.0 * (x.norm(dim=-1) < 0.6).float()
        feat = torch.cat([(x + 1) / 2, x.new_zeros(*x.shape[:-1], cfg.feature_channels - 3)], -1)
        return sigma, feat

    model.decoder.forward = ball
    model.decoder.density = lambda planes, x: ball(planes, x)[0]
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    return model, model.prepare_source(img, mask)


def _static_warp(model, shift):
    """Replace the deformation by the same offset everywhere and for every frame."""
    field = model.deformation

    def from_encoding(h, slots, group_frame=None):
        offset = h.new_tensor(shift).expand(*h.shape[:-1], 3)
        return offset, h.new_ones(h.shape[:-1]), h.new_zeros(*h.shape[:-1], slots.shape[1]), None

    field.from_encoding = from_encoding
    field.forward = lambda x, slots, group_frame=None: from_encoding(field.encode(x), slots, group_frame)


def _cell_centres(res):
    cells = (torch.arange(res) + 0.5) / res * 2 - 1
    return torch.stack(torch.meshgrid(cells, cells, cells, indexing="ij"), -1)


def test_fit_to_audio_shrinks_the_grid_to_the_offsets_it_sees():
    model, src = _ball_model()
    baked = model.bake(src)
    tokens = model.audio_tokens(torch.randn(6, 80, 16))
    fitted = model.fit_to_audio(baked, tokens)  # offsets start tiny
    assert baked.dilation == 4 and fitted.dilation == 1
    assert fitted.occupied_fraction < 0.7 * baked.occupied_fraction
    assert not (fitted.grid.binaries & ~baked.grid.binaries).any()  # a subset of the safe grid
    # Large offsets that follow the audio (each probed frame moves the head the other
    # way): the grid keeps where either frame sees the head.
    shifts = iter([(0.24, 0.0, 0.0), (-0.24, 0.0, 0.0)] * 8)
    field = model.deformation
    field.from_encoding = lambda h, slots, group_frame=None: (
        h.new_tensor(next(shifts)).expand(*h.shape[:-1], 3),
        h.new_ones(h.shape[:-1]),
        None,
    )
    swinging = model.fit_to_audio(baked, tokens).grid.binaries[0, 0]
    centres = _cell_centres(32)
    for side in (-0.24, 0.24):  # observed x shows canonical x + shift: the ball sits at -shift
        r = (centres - torch.tensor([-side, 0.0, 0.0])).norm(dim=-1)
        assert swinging[(r > 0.6 - 2 / 32) & (r < 0.6) & baked.grid.binaries[0, 0]].all()
    assert not (swinging & ~baked.grid.binaries[0, 0]).any()


def test_fit_to_audio_follows_a_static_warp_at_no_cost():
    model, src = _ball_model()
    _static_warp(model, (0.2, 0.0, 0.0))  # observed x shows the canonical x + 0.2: the ball sits at -0.2
    baked = model.bake(src)
    fitted = model.fit_to_audio(baked, model.audio_tokens(torch.randn(6, 80, 16)))
    assert fitted.dilation == 1  # the margin
    occ, budget = fitted.grid.binaries[0, 0], baked.grid.binaries[0, 0]
    centres = _cell_centres(32)
    r = (centres - torch.tensor([-0.2, 0.0, 0.0])).norm(dim=-1)
    assert occ[(r > 0.6 - 2 / 32) & (r < 0.6)].all()  # the moved surface is kept
    # Around the unmoved ball, away from the moved one (a cell's corners and the cube
    # margin reach under 4 cells out): the budget keeps it, the fitted grid does not.
    unmoved = (centres.norm(dim=-1) < 0.8) & (r > 0.6 + 4 * 2 / 32)
    assert unmoved.sum() > 100 and budget[unmoved].all() and not occ[unmoved].any()
    assert fitted.occupied_fraction < 0.6 * baked.occupied_fraction


def test_fitted_grid_renders_the_same_frames():
    model, src = _ball_model()
    _static_warp(model, (0.2, -0.1, 0.05))
    cfg = model.cfg
    _, _, c2w, K, mel = _inputs(cfg, T=3)
    tokens = model.audio_tokens(mel)[0]
    baked = model.bake(src)
    fitted = model.fit_to_audio(baked, tokens)
    assert fitted.occupied_fraction < 0.6 * baked.occupied_fraction
    wide = model.render_frames(baked, tokens, c2w[0], K[0])
    tight = model.render_frames(fitted, tokens, c2w[0], K[0])
    assert wide["opacity"].amax() > 0.99  # the ball is in view
    for key in ("rgb", "opacity"):
        torch.testing.assert_close(tight[key], wide[key], rtol=0, atol=1e-5)


@pytest.mark.parametrize("grouped", [False, True])
def test_folded_deformation_equals_the_direct_form(grouped):
    cfg = tiny_config().model
    model = S3DNeRF(cfg).double()
    with torch.no_grad():
        model.deformation.head[-1].weight.normal_(0, 1.0)
        model.deformation.encoding.params.uniform_(-1, 1)
    slots = torch.randn(3, cfg.n_slots, cfg.slot_dim, dtype=torch.float64, requires_grad=True)
    if grouped:  # one group per ray, each naming its frame
        x = torch.rand(7, 5, 3, dtype=torch.float64) * 2 - 1
        frames = torch.tensor([0, 0, 1, 2, 2, 2, 1])
    else:
        x = torch.rand(3, 11, 3, dtype=torch.float64) * 2 - 1
        frames = None
    fast = model.deformation(x, slots, frames)
    ref = model.deformation.reference(x, slots, frames)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    g_fast = torch.autograd.grad(fast[0].sum() + fast[1].sum(), [slots] + list(model.deformation.parameters()))
    g_ref = torch.autograd.grad(ref[0].sum() + ref[1].sum(), [slots] + list(model.deformation.parameters()))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
