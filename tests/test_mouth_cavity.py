"""``model.mouth_cavity``: a learned dark feature the deformation field can blend in where
a mouth opens, switching it on when a run saved without it is resumed, and
``model.cavity_opening``: the source opened where the cavity renders."""

import dataclasses

import pytest
import torch
from model_helpers import TINY_OVERRIDES, tiny_config
from test_model import _inputs

from s3d_fast.checkpoint import RunDirectory, load_checkpoint
from s3d_fast.cli import main
from s3d_fast.config import ConfigError, LossConfig
from s3d_fast.model import S3DNeRF
from s3d_fast.model.losses import generator_losses
from s3d_fast.model.mouth import OPENING_FROM, OPENING_FULL, open_mouth
from s3d_fast.training.resume import optimizer_state_with_new_parameters, parameters_added


def _cavity_config(opening: bool = False):
    cfg = tiny_config()
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mouth_cavity=True, cavity_opening=opening))


def test_off_by_default_and_adds_three_tensors():
    assert S3DNeRF(tiny_config().model).deformation.cavity_head is None
    names = {n for n, _ in S3DNeRF(_cavity_config().model).named_parameters() if "cavity" in n}
    assert names == {"deformation.cavity_head.weight", "deformation.cavity_head.bias", "decoder.cavity"}


def test_blend_replaces_the_fetched_feature_by_its_share():
    model = S3DNeRF(_cavity_config().model)
    with torch.no_grad():
        model.decoder.cavity.normal_()
    cavity = torch.cat([torch.sigmoid(model.decoder.cavity[:3]), model.decoder.cavity[3:]]).detach()
    feature = torch.rand(2, 5, cavity.numel())
    share = torch.tensor([[0.0, 1.0, 0.5, 0.25, 1.0], [1.0, 0.0, 0.0, 0.75, 0.5]])
    out = model.decoder.blend_cavity(feature, share)
    torch.testing.assert_close(out, feature * (1 - share[..., None]) + cavity * share[..., None])
    assert model.decoder.blend_cavity(feature, None) is feature


def test_the_share_follows_the_audio_and_matches_the_direct_form():
    cfg = _cavity_config().model
    model = S3DNeRF(cfg).double()
    with torch.no_grad():
        model.deformation.head[-1].weight.normal_(0, 1.0)
        model.deformation.cavity_head.weight.normal_(0, 1.0)
        model.deformation.encoding.params.uniform_(-1, 1)
    x = torch.rand(2, 40, 3, dtype=torch.float64) * 2 - 1
    slots = torch.randn(2, cfg.n_slots, cfg.slot_dim, dtype=torch.float64, requires_grad=True)
    fast = model.deformation(x, slots)
    ref = model.deformation.reference(x, slots)
    torch.testing.assert_close(fast[3], ref[3], rtol=1e-10, atol=1e-12)
    assert ((fast[3] > 0) & (fast[3] < 1)).all()
    params = [slots] + list(model.deformation.parameters())
    g_fast = torch.autograd.grad(fast[0].sum() + fast[1].sum() + fast[3].sum(), params)
    g_ref = torch.autograd.grad(ref[0].sum() + ref[1].sum() + ref[3].sum(), params)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    assert g_fast[0].abs().sum() > 0  # the slots (and through them the audio) set the share
    other = model.deformation(x, slots.detach().flip(0))[3]
    assert (other - fast[3]).abs().max() > 1e-3


def test_a_full_share_paints_the_cavity_colour_in_both_render_paths():
    cfg = _cavity_config().model
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():
        model.decoder.mlp[-1].weight.mul_(30)  # an opaque head
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
        model.decoder.cavity[:3] = torch.tensor([-6.0, 0.0, 6.0])  # colour (0.0025, 0.5, 0.9975)
        model.deformation.cavity_head.bias.fill_(30.0)  # share 1 everywhere
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    src = model.prepare_source(img, mask)
    tokens = model.audio_tokens(mel)
    colour = torch.sigmoid(model.decoder.cavity[:3]).detach()
    with torch.no_grad():
        out = model.render(src, tokens, c2w, K, stratified=False)
        baked = model.bake(src)
        full = model.render_frames(baked, tokens[0], c2w[0], K[0])
        model.deformation.cavity_head.bias.fill_(-30.0)  # share 0: the fetched feature
        none = model.render_frames(baked, tokens[0], c2w[0], K[0])
    solid = out["opacity"][0, 0] > 0.999
    assert solid.sum() > 10
    torch.testing.assert_close(
        out["rgb_low"][0, 0][:, solid], colour[:, None].expand(3, int(solid.sum())), atol=2e-3, rtol=0
    )
    # The rendered share is the opacity where every point takes the cavity in full.
    torch.testing.assert_close(out["cavity"], out["opacity"], atol=1e-5, rtol=0)
    # The real-time path blends it in too.
    assert (full["rgb"] - none["rgb"]).abs().max() > 1e-2


def test_the_share_is_taught_by_the_open_mouth_interior():
    r = H = 16  # targets at NeRF resolution, so the interior is exactly the label-3 pixels
    masks = torch.ones(1, 2, H, H, dtype=torch.long)
    masks[:, :, 10:14, 4:12] = 2  # lips
    masks[:, 1, 11:13, 6:10] = 3  # frame 1: the mouth is open
    target = torch.rand(1, 2, 3, H, H)
    interior = (masks == 3).float()

    rendered = {
        "rgb": target.clone(),
        "rgb_low": torch.rand(1, 2, 3, r, r),
        "opacity": torch.rand(1, 2, r, r),
        "offset_sq": torch.zeros(()),
    }

    def loss(share):
        out = {**rendered, "cavity": share}
        return generator_losses(out, target, masks, LossConfig())

    right, none, everywhere = (
        loss(interior.clamp(0.01, 0.99)),
        loss(torch.full_like(interior, 0.01)),
        loss(torch.full_like(interior, 0.99)),
    )
    assert right["cavity"] < 0.1 * none["cavity"] and right["cavity"] < 0.1 * everywhere["cavity"]
    assert float(right["total"] - none["total"]) == pytest.approx(float(right["cavity"] - none["cavity"]), rel=1e-4)
    share = torch.full_like(interior, 0.02).requires_grad_(True)
    loss(share)["total"].backward()
    assert (share.grad[:, 1, 11:13, 6:10] < 0).all()  # up inside the open mouth
    assert (share.grad[:, 0] > 0).all()  # down everywhere on the closed frame
    # A model without the cavity renders none and pays nothing.
    assert "cavity" not in generator_losses(rendered, target, masks, LossConfig())


def test_optimizer_state_moves_to_the_grown_model():
    small, grown = S3DNeRF(tiny_config().model), S3DNeRF(_cavity_config().model)
    grown.load_state_dict(small.state_dict(), strict=False)
    opt = torch.optim.Adam(small.parameters())
    img, mask, c2w, K, mel = _inputs(tiny_config().model, T=1)
    small(img, mask, small.audio_tokens(mel), c2w, K)["rgb"].mean().backward()
    opt.step()
    added = parameters_added({"model": {}}, _cavity_config(), grown)
    assert added == {n for n, _ in grown.named_parameters() if "cavity" in n}
    state = optimizer_state_with_new_parameters(opt.state_dict(), grown, added)
    new_opt = torch.optim.Adam(grown.parameters())
    new_opt.load_state_dict(state)
    old_state = dict(zip((n for n, _ in small.named_parameters()), (opt.state[p] for p in small.parameters())))
    for name, p in grown.named_parameters():
        if name in added:
            assert p not in new_opt.state
        else:
            torch.testing.assert_close(new_opt.state[p]["exp_avg"], old_state[name]["exp_avg"])
    # Nothing is added when the saved run already had the cavity, or this one has not.
    assert parameters_added({"model": {"mouth_cavity": True}}, _cavity_config(), grown) == set()
    assert parameters_added({"model": {}}, tiny_config(), small) == set()


def test_resume_switches_the_cavity_on_and_trains_it(data, tmp_path, capsys):
    fast = TINY_OVERRIDES + [
        "train.warmup_steps=1",
        "train.log_every=1",
        "train.eval_every=100",
        "train.checkpoint_every=2",
        "loss.sync=0",
        "train.sync_steps=0",
    ]
    sets = [a for o in fast for a in ("--set", o)]
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "2", "--quiet"] + sets) == 0
    assert (
        main(
            ["train", "--data", str(data), "--out", str(run), "--steps", "4", "--resume"]
            + sets
            + ["--set", "model.mouth_cavity=true"]
        )
        == 0
    )
    assert "3 new parameter tensors start from their initialisation" in capsys.readouterr().out
    after = load_checkpoint(RunDirectory(run).checkpoint_path(4))
    assert after.config["model"]["mouth_cavity"] is True
    fresh = S3DNeRF(_cavity_config().model).state_dict()
    assert not torch.equal(after.model_state["decoder.cavity"], fresh["decoder.cavity"])  # it trained
    assert not torch.equal(after.model_state["deformation.cavity_head.bias"], fresh["deformation.cavity_head.bias"])


def test_the_opening_needs_the_cavity_and_adds_no_parameters():
    cfg = tiny_config().model
    with pytest.raises(ConfigError, match="cavity_opening needs model.mouth_cavity"):
        S3DNeRF(dataclasses.replace(cfg, cavity_opening=True))
    plain, opening = S3DNeRF(_cavity_config().model), S3DNeRF(_cavity_config(opening=True).model)
    assert plain.state_dict().keys() == opening.state_dict().keys()


def test_open_mouth_darkens_by_the_share_and_passes_gradients_in_between():
    images = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    share = torch.tensor([0.0, OPENING_FROM, 0.2, 0.3, OPENING_FULL, 0.9, 1.0, 0.45, 0.15, 0.05], dtype=torch.float64)
    share = share.view(2, 1, 1, 5).expand(2, 1, 4, 5).contiguous()  # at the images' size: no resampling
    opened = ((share - OPENING_FROM) / (OPENING_FULL - OPENING_FROM)).clamp(0, 1)
    torch.testing.assert_close(open_mouth(images, share), images * (1 - opened))
    assert torch.equal(open_mouth(images, torch.zeros_like(share)), images)  # closed: the source untouched
    assert open_mouth(images, torch.ones_like(share)).abs().max() == 0  # open: black
    # Inside the ramp the share is taught by what the frame shows.
    ramp = (0.12 + 0.36 * torch.rand(2, 1, 4, 5, dtype=torch.float64)).requires_grad_(True)
    torch.autograd.gradcheck(open_mouth, (images.clone().requires_grad_(True), ramp))
    # A share at NeRF resolution is upsampled to the images'.
    assert open_mouth(torch.rand(1, 3, 16, 16), torch.full((1, 1, 4, 4), 0.3)).shape == (1, 3, 16, 16)


def test_the_opening_shows_where_the_cavity_renders_in_both_render_paths():
    cfg = _cavity_config(opening=True).model
    model = S3DNeRF(cfg).eval()
    with torch.no_grad():
        model.decoder.mlp[-1].weight.mul_(30)  # an opaque head
        for conv in model.encoder.to_planes.values():
            conv.weight.mul_(100)
        model.superres.head[0].bias[:4].fill_(4.0)  # super-resolution blends in the source
        model.deformation.cavity_head.bias.fill_(30.0)  # share 1 everywhere
    img, mask, c2w, K, mel = _inputs(cfg, T=1)
    src = model.prepare_source(img, mask)
    tokens = model.audio_tokens(mel)
    r = cfg.nerf_resolution
    left = torch.zeros(1, 1, r, r, dtype=torch.bool)
    left[..., : r // 2] = True  # the right half renders nothing: background, no cavity
    with torch.no_grad():
        out = model.render(src, tokens, c2w, K, stratified=False, ray_mask=left)
        baked = model.render_frames(model.bake(src), tokens[0], c2w[0], K[0])
        model.cfg.cavity_opening = False
        shut = model.render(src, tokens, c2w, K, stratified=False, ray_mask=left)
    R = cfg.output_resolution
    share = torch.nn.functional.interpolate(
        out["cavity"][0, :1, None], size=(R, R), mode="bilinear", align_corners=False
    )[0, 0]
    solid, clear = share > OPENING_FULL, share < OPENING_FROM
    assert solid.sum() > 100 and clear.sum() > 100 and shut["rgb"][0, 0][:, solid].mean() > 0.2
    # Where the head renders the cavity in full the frame is black, in both render paths.
    assert out["rgb"][0, 0][:, solid].max() == 0 and baked["rgb"][0][:, solid].max() < 0.01
    # Where it renders none, the source is blended in untouched: only super-resolution's
    # own 2 % of the colour, which sees the opening nearby, may change.
    assert (out["rgb"][0, 0][:, clear] - shut["rgb"][0, 0][:, clear]).abs().max() < 0.03


def test_train_refuses_an_opening_without_the_cavity_in_one_line(data, tmp_path, capsys):
    sets = [a for o in TINY_OVERRIDES + ["model.cavity_opening=true"] for a in ("--set", o)]
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "1", "--quiet"] + sets) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("s3d-fast train: error: ") and "cavity_opening needs model.mouth_cavity" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not run.exists()  # refused before the run folder, and before the expert's stage
