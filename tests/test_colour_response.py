"""The random camera response of training items (``train.colour_jitter``): one response per
item, the same for its source and targets, drawn after everything else an item draws."""

import numpy as np
import pytest
import torch

from s3d_fast.config import ConfigError, apply_overrides, check_config, get_config
from s3d_fast.data.colour_response import ColourResponse, random_response
from s3d_fast.data.dataset import TalkingHeadDataset


def test_the_neutral_response_changes_nothing():
    images = torch.rand(2, 3, 8, 8)
    assert torch.equal(ColourResponse((1.0, 1.0, 1.0), 1.0, 1.0)(images), images)
    assert torch.equal(random_response(np.random.default_rng(0), 0.0)(images), images)


def test_each_factor_does_what_it_says():
    grey = torch.full((3, 4, 4), 0.5)
    warm = ColourResponse((1.2, 1.0, 0.8), 1.0, 1.0)(grey)
    assert warm[0].mean() > 0.5 > warm[2].mean()
    assert torch.allclose(ColourResponse((1.0,) * 3, 2.0, 1.0)(grey), torch.full_like(grey, 0.25))
    red = torch.zeros(3, 4, 4)
    red[0] = 0.8
    flat = ColourResponse((1.0,) * 3, 1.0, 0.0)(red)  # no saturation: the luma in every channel
    assert torch.allclose(flat[0], flat[1]) and torch.allclose(flat[1], flat[2])
    assert torch.allclose(flat[0], torch.full((4, 4), 0.299 * 0.8))


def test_responses_stay_in_range_and_follow_the_strength():
    rng = np.random.default_rng(1)
    images = torch.rand(5, 3, 16, 16)
    spread = {}
    for strength in (0.25, 1.0):
        outs = [random_response(rng, strength)(images) for _ in range(20)]
        assert all(float(o.min()) >= 0.0 and float(o.max()) <= 1.0 for o in outs)
        spread[strength] = float(torch.stack([(o - images).abs().mean() for o in outs]).mean())
    assert 0 < spread[0.25] < spread[1.0]
    with pytest.raises(ValueError, match="strength"):
        random_response(rng, 1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        ColourResponse((1.0,) * 3, 1.0, 1.0)(torch.rand(4, 8, 8))


def test_items_keep_their_draws_and_share_one_response(data):
    plain = TalkingHeadDataset(data, "train", n_targets=2, views=True)
    jittered = TalkingHeadDataset(data, "train", n_targets=2, views=True, colour_jitter=1.0)
    changed = 0
    for index in range(0, len(plain), max(1, len(plain) // 6)):
        a, b = plain[index], jittered[index]
        assert (a["source_index"], a["target_index"], a["view_index"]) == (
            b["source_index"],
            b["target_index"],
            b["view_index"],
        )
        assert torch.equal(a["mel"], b["mel"]) and torch.equal(a["target_masks"], b["target_masks"])
        # One response for every image of the item: a pixel equal in two of its images stays equal.
        src, tgt = a["source"], a["target"][0]
        same = (src == tgt).all(0)
        assert same.any()
        assert torch.equal(b["source"][:, same], b["target"][0][:, same])
        changed += not torch.equal(a["source"], b["source"])
        assert torch.equal(jittered[index]["source"], b["source"])  # the item's own draw, every time
    assert changed > 0


def test_the_config_takes_a_strength_from_0_to_1():
    cfg = apply_overrides(get_config("small"), ["train.colour_jitter=0.5"])
    check_config(cfg)
    assert cfg.train.colour_jitter == 0.5
    with pytest.raises(ConfigError, match="colour_jitter"):
        check_config(apply_overrides(get_config("small"), ["train.colour_jitter=2"]))
    with pytest.raises(ValueError, match="colour_jitter"):
        TalkingHeadDataset("unused", colour_jitter=-0.1)
