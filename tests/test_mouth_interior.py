"""``model.mouth_interior``: the opening shows the mouth's interior, a colour grid over the
box shared by every face, rendered by the field, in place of black."""

import dataclasses

import pytest
import torch
from model_helpers import FAST_TRAIN, tiny_config
from test_model import _inputs

from s3d_fast.checkpoint import RunDirectory, load_checkpoint
from s3d_fast.cli import main
from s3d_fast.config import ConfigError
from s3d_fast.model import S3DNeRF
from s3d_fast.model.interior import INITIAL_LOGIT, PAINTER_REACH, MouthInterior
from s3d_fast.model.mouth import OPENING_FROM, OPENING_FULL, open_mouth
from s3d_fast.training.resume import parameters_added


def _config(interior: bool = True):
    cfg = tiny_config()
    model = dataclasses.replace(cfg.model, mouth_cavity=True, cavity_opening=True, mouth_interior=interior)
    return dataclasses.replace(cfg, model=model)


def test_it_needs_the_opening_and_adds_a_grid_and_a_painter():
    cfg = tiny_config().model
    with pytest.raises(ConfigError, match="mouth_interior needs model.cavity_opening"):
        S3DNeRF(dataclasses.replace(cfg, mouth_cavity=True, mouth_interior=True))
    assert S3DNeRF(_config(interior=False).model).interior is None
    model = S3DNeRF(_config().model)
    n = model.cfg.interior_resolution
    added = {name: p.shape for name, p in model.named_parameters() if "interior" in name}
    assert added.pop("interior.cells") == (1, 3, n, n, n)
    assert added and all(name.startswith("interior.painter.") for name in added)
    with pytest.raises(ConfigError, match="interior_resolution"):
        S3DNeRF(dataclasses.replace(_config().model, interior_resolution=100_000))


def test_a_fresh_grid_is_the_cavitys_first_colour_and_cells_set_colours_where_they_lie():
    interior = MouthInterior(dataclasses.replace(_config().model, interior_resolution=2))
    x = torch.rand(5, 7, 3) * 2 - 1
    fresh = interior(x)
    assert fresh.shape == (5, 7, 3)
    torch.testing.assert_close(fresh, torch.full_like(fresh, torch.sigmoid(torch.tensor(INITIAL_LOGIT)).item()))
    with torch.no_grad():  # 2 cells a side: the grid's last axis is x, its first z
        interior.cells[0, 0, :, :, 1] = 1.0  # red on the side x > 0
        interior.cells[0, 2, 1] = 1.0  # blue on the side z > 0
    corners = torch.tensor([[0.5, 0.0, -0.5], [-0.5, 0.0, -0.5], [-0.5, 0.0, 0.5], [0.9, 0.9, 0.9]])
    colour = interior(corners)
    high, low = torch.sigmoid(torch.tensor(INITIAL_LOGIT + 30.0)), torch.sigmoid(torch.tensor(INITIAL_LOGIT))
    expected = torch.tensor([[high, low, low], [low, low, low], [low, low, high], [high, low, high]])
    torch.testing.assert_close(colour, expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 1001])
def test_the_lookup_split_over_threads_is_one_trilinear_lookup(n, threads):
    """The lookup splits its points over the CPU's threads: values and gradients are those
    of one grid_sample over all of them, whatever the count of points and threads."""
    import torch.nn.functional as F

    from s3d_fast.model.interior import GAIN

    interior = MouthInterior(dataclasses.replace(_config().model, interior_resolution=5))
    with torch.no_grad():
        interior.cells.normal_(0, 0.05)
    x = (torch.rand(n, 3) * 2.4 - 1.2).requires_grad_()  # some outside the box: the border's colour
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        split = interior(x)
    finally:
        torch.set_num_threads(before)
    grid = x.view(1, 1, 1, -1, 3)
    logits = F.grid_sample(interior.cells, grid, mode="bilinear", padding_mode="border", align_corners=False)
    whole = torch.sigmoid(INITIAL_LOGIT + GAIN * logits.view(3, -1).t())
    torch.testing.assert_close(split, whole)
    if n:
        weights = torch.rand(n, 3)
        got = torch.autograd.grad((split * weights).sum(), (interior.cells, x))
        want = torch.autograd.grad((whole * weights).sum(), (interior.cells, x))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


def test_the_interiors_colour_blends_into_the_colour_channels_alone():
    model = S3DNeRF(_config().model)
    feature = torch.rand(4, 9, model.cfg.feature_channels, requires_grad=True)
    share, colour = torch.rand(4, 9), torch.rand(4, 9, 3)
    blended = model.decoder.blend_cavity(feature, share, colour)
    cavity = torch.cat([colour, model.decoder.cavity[3:].expand(4, 9, -1)], -1)
    torch.testing.assert_close(blended, feature + share[..., None] * (cavity - feature))
    blended.sum().backward()  # the gradient reaches the feature and the shared channels
    assert feature.grad is not None and model.decoder.cavity.grad[3:].abs().sum() > 0


def test_open_mouth_shows_the_interior_in_the_opening_and_passes_gradients():
    images = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    interior = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    up = torch.nn.functional.interpolate(interior, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(open_mouth(images, torch.ones(2, 1, 4, 4, dtype=torch.float64), interior), up)
    assert torch.equal(open_mouth(images, torch.zeros(2, 1, 4, 4, dtype=torch.float64), interior), images)
    share = torch.full((2, 1, 4, 4), 0.5 * (OPENING_FROM + OPENING_FULL), dtype=torch.float64)
    torch.testing.assert_close(open_mouth(images, share, interior), 0.5 * (images + up))
    ramp = (0.12 + 0.36 * torch.rand(2, 1, 4, 4, dtype=torch.float64)).requires_grad_(True)
    inputs = (images.clone().requires_grad_(True), ramp, interior.clone().requires_grad_(True))
    torch.autograd.gradcheck(open_mouth, inputs)


def test_the_painter_adds_detail_only_around_each_opening_and_learns():
    interior = MouthInterior(_config().model).double()
    colour = torch.rand(3, 3, 64, 64, dtype=torch.float64) * 0.5 + 0.25
    opened = torch.zeros(3, 1, 64, 64, dtype=torch.float64)
    opened[0, :, 30:34, 20:40] = 1.0  # frame 0 open, frame 1 closed, frame 2 open elsewhere
    opened[2, :, 5:8, 50:60] = 0.5
    assert torch.equal(interior.paint(colour, opened), colour)  # a fresh painter adds nothing
    with torch.no_grad():
        for p in interior.painter.parameters():
            p.normal_(0, 0.3)
    painted = interior.paint(colour, opened)
    changed = (painted != colour).any(1)
    assert changed[0, 30:34, 20:40].all() and not changed[1].any() and changed[2, 5:8, 50:60].all()
    near = torch.zeros(3, 64, 64, dtype=torch.bool)  # the boxes around the openings, grown by the reach
    r = PAINTER_REACH
    near[0, 30 - r : 34 + r, 20 - r : 40 + r] = True
    near[2, max(0, 5 - r) : 8 + r, 50 - r : 64] = True
    assert not changed[~near].any()
    # The same as painting the whole frame, inside the box away from its edge.
    whole = (colour + interior.painter(torch.cat([colour, opened], 1))).clamp(0, 1)
    torch.testing.assert_close(painted[0, :, 30:34, 20:40], whole[0, :, 30:34, 20:40])
    painted.sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in interior.painter.parameters())


def _opaque_open_model(cfg):
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():
        model.decoder.mlp[-1].weight.mul_(30)  # an opaque head
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
        model.deformation.cavity_head.bias.fill_(30.0)  # share 1 everywhere
        n = cfg.interior_resolution
        model.interior.cells[0, 0, :, : n // 2] = 1.0  # red in one half of the box, blue in the other
        model.interior.cells[0, 2, :, n // 2 :] = 1.0
    return model


def _both_paths(model):
    """One frame by the training-style path and the real-time one, and the cavity's share
    and the field's own colour image upsampled to the output."""
    cfg = model.cfg
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    src = model.prepare_source(img, mask)
    tokens = model.audio_tokens(mel)
    with torch.no_grad():
        out = model.render(src, tokens, c2w, K, stratified=False)
        baked = model.render_frames(model.bake(src), tokens[0], c2w[0], K[0])
    R = cfg.output_resolution
    share = torch.nn.functional.interpolate(out["cavity"][0, :1, None], size=(R, R), mode="bilinear")[0, 0]
    low = torch.nn.functional.interpolate(out["rgb_low"][0], size=(R, R), mode="bilinear", align_corners=False)[0]
    return out, baked, share, low


def test_the_opening_shows_the_interiors_colours_in_both_render_paths():
    cfg = _config().model
    model = _opaque_open_model(cfg)
    out, baked, share, low = _both_paths(model)
    solid = share > 0.999
    assert solid.sum() > 100
    # Where the mouth is open in full the frame is the field's colour, the interior's:
    # red on one side of the head, blue on the other, never the black of an unlit mouth.
    torch.testing.assert_close(out["rgb"][0, 0][:, solid], low[:, solid])
    red, blue = out["rgb"][0, 0][0][solid], out["rgb"][0, 0][2][solid]
    assert (red > 0.5).sum() > 20 and (blue > 0.5).sum() > 20 and (torch.maximum(red, blue) > 0.3).all()
    # The real-time path shows the same interior.
    torch.testing.assert_close(baked["rgb"][0][:, solid], out["rgb"][0, 0][:, solid], atol=0.05, rtol=0)


def test_the_frame_teaches_the_grid():
    cfg = _config().model
    model = S3DNeRF(cfg)
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(2.0)  # the mouth mostly open
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    out = model(img, mask, model.audio_tokens(mel), c2w, K)
    out["rgb"].mean().backward()
    assert model.interior.cells.grad.abs().sum() > 0


def test_resume_grows_the_interior_and_trains_it_alone_with_superres(data, tmp_path, capsys):
    opening = ["model.mouth_cavity=true", "model.cavity_opening=true"]
    sets = [a for o in FAST_TRAIN + opening for a in ("--set", o)]
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "2", "--quiet"] + sets) == 0
    before = load_checkpoint(RunDirectory(run).checkpoint_path(2)).model_state
    grow = ["--set", "model.mouth_interior=true", "--set", "train.train_only=interior,superres"]
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "4", "--resume"] + sets + grow) == 0
    assert "new parameter tensors start from their initialisation (interior.cells, interior.painter" in (
        capsys.readouterr().out
    )
    after = load_checkpoint(RunDirectory(run).checkpoint_path(4)).model_state
    assert not torch.equal(after["interior.cells"], torch.zeros_like(after["interior.cells"]))  # it trained
    assert torch.equal(after["decoder.cavity"], before["decoder.cavity"])  # and the field did not
    saved = {"model": {"mouth_cavity": True, "cavity_opening": True, "mouth_interior": True}}
    assert parameters_added(saved, _config(), S3DNeRF(_config().model)) == set()


def test_the_painter_learns_from_the_targets_interior_alone():
    from s3d_fast.config import LossConfig
    from s3d_fast.model.losses import generator_losses

    cfg = _config().model
    model = S3DNeRF(cfg)  # training mode: the frame shows the interior without its gradient
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(2.0)  # the mouth mostly open
        for p in model.interior.painter.parameters():
            p.normal_(0, 0.1)
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    out = model(img, mask, model.audio_tokens(mel), c2w, K)
    painter = list(model.interior.painter.parameters())
    grads = torch.autograd.grad(out["rgb"].sum(), painter, retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    R = out["rgb"].shape[-1]
    target = torch.rand_like(out["rgb"])
    masks = torch.ones(*out["rgb"].shape[:2], R, R, dtype=torch.long)
    masks[..., R // 2 : R // 2 + 6, R // 3 : 2 * R // 3] = 3
    losses = generator_losses(out, target, masks, LossConfig())
    inside = (masks == 3).unsqueeze(2).expand_as(target)
    expected = (out["interior"] - target).abs()[inside].mean()
    torch.testing.assert_close(losses["interior_colour"], expected)
    losses["interior_colour"].backward()
    assert all(p.grad.abs().sum() > 0 for p in painter)
    closed = generator_losses(out, target, torch.ones_like(masks), LossConfig())
    assert float(closed["interior_colour"].detach()) == 0.0  # no interior in the target: nothing to learn


def test_painted_alone_the_opening_is_the_cavitys_colour_not_what_lies_in_front():
    cfg = dataclasses.replace(_config().model, interior_alone=True)
    with pytest.raises(ConfigError, match="interior_alone needs model.mouth_interior"):
        S3DNeRF(dataclasses.replace(cfg, mouth_interior=False))
    model = _opaque_open_model(cfg)
    with torch.no_grad():
        model.deformation.cavity_head.bias.fill_(1.0)  # about three quarters of every sample is the cavity
        model.interior.cells.zero_()
        model.interior.cells[0, 0] = 1.0  # a red interior all through the box
    out, baked, share, low = _both_paths(model)
    opened = share > OPENING_FULL + 0.02
    assert opened.sum() > 100
    # The frame's own colour there mixes the cavity with the face's colour; the opening is red.
    assert (low[1][opened] > 0.1).any()
    rgb = out["rgb"][0, 0][:, opened]
    # (Red in full where the low-resolution share is the opening's; its rim, upsampled from
    # pixels the opening barely reaches, a little less.)
    assert (rgb[0] > 0.95).float().mean() > 0.9 and (rgb[0] > 0.75).all() and (rgb[1:] < 0.1).all(), rgb.mean(1)
    inner = rgb[0] > 0.95  # the rim, a few pixels, depends on the marching's samples
    torch.testing.assert_close(baked["rgb"][0][:, opened][:, inner], rgb[:, inner], atol=0.05, rtol=0)
