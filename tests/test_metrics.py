"""Evaluation metrics: PSNR / SSIM against scikit-image, the pixel-only mouth opening against
SynthTalk's ground-truth jaw viseme, and LSE-D / LSE-C from a trained tiny sync expert."""

import numpy as np
import pytest
import torch
from _sync_data import mouth_set, sync_set, trained_syncnet
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from s3d_fast.data.dataset import ClipStore, load_manifest
from s3d_fast.metrics import mouth_opening, mouth_region, pearson, psnr, shift_audio, ssim, sync_scores


def _pair(seed=0, shape=(3, 3, 37, 45), noise=0.08):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    # Smooth structure plus noise, so SSIM is neither ~0 nor ~1.
    a = (a + np.roll(a, 1, -1) + np.roll(a, 1, -2)) / 3
    b = np.clip(a + noise * rng.standard_normal(shape), 0, 1)
    return a, b


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_matches_skimage(dtype):
    a, b = _pair()
    ours = ssim(torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype), reduction="none")
    ref = [
        structural_similarity(
            x.transpose(1, 2, 0),
            y.transpose(1, 2, 0),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        for x, y in zip(a, b)
    ]
    assert np.allclose(ours.numpy(), ref, atol=1e-3 if dtype == torch.float32 else 1e-9)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(1.0)


def test_ssim_is_differentiable():
    a, b = _pair(1, (1, 3, 16, 16))
    x = torch.from_numpy(a).requires_grad_(True)
    (1 - ssim(x, torch.from_numpy(b))).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_psnr_matches_skimage_and_masks():
    a, b = _pair(2)
    ours = psnr(torch.from_numpy(a), torch.from_numpy(b), reduction="none")
    ref = [peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)]
    assert np.allclose(ours.numpy(), ref, atol=1e-6)
    assert float(psnr(torch.from_numpy(a), torch.from_numpy(b))) == pytest.approx(np.mean(ref))
    # A mask restricts the error to its pixels: errors outside it do not count.
    x = torch.zeros(1, 3, 8, 8)
    y = x.clone()
    y[..., :4, :] = 0.1  # error 0.1 on the top half only
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[:, :4] = True
    assert float(psnr(x, y, mask)) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(x, y, ~mask)) == float("inf")
    with pytest.raises(ValueError, match="no pixel"):
        psnr(x, y, torch.zeros(1, 8, 8, dtype=torch.bool))


def test_image_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(TypeError, match="float"):
        ssim(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_mouth_opening_follows_the_jaw_on_synthtalk():
    m = load_manifest(mouth_set())
    store = ClipStore(m)
    for clip in m.clips:
        data = store.get(clip)
        region = mouth_region(data["masks"])
        opening = mouth_opening(data["frames"], region)
        assert opening.shape == (clip["n_frames"],)
        r = pearson(opening, data["visemes"][:, 0])
        assert r >= 0.85, (clip["id"], r)
        # Without masks: the default box of the face-aligned crop (a little less exact: 0.84-0.99
        # on the clips measured, where the mask box gives 0.86-0.99).
        r_default = pearson(mouth_opening(data["frames"]), data["visemes"][:, 0])
        assert r_default >= 0.8, (clip["id"], r_default)
        # A tensor (T, 3, H, W) in [0, 1] reads the same as the uint8 frames.
        t = torch.from_numpy(data["frames"]).permute(0, 3, 1, 2).float() / 255
        assert np.allclose(mouth_opening(t, region), opening)
        # A repeated frame: a constant opening, and correlation 0 with anything.
        still = mouth_opening(np.repeat(data["frames"][10:11], 20, axis=0), region)
        assert np.all(still == still[0])
        assert pearson(still, data["visemes"][:20, 0]) == 0.0


def test_pearson():
    x = np.arange(10.0)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        pearson(x, x[:5])


def test_lse_prefers_the_true_offset_over_a_one_second_shift():
    net, _ = trained_syncnet()
    m = load_manifest(sync_set())
    store = ClipStore(m)
    better_c, better_d, offsets = 0, 0, []
    clips = m.clips_in("heldout")
    for clip in clips:
        data = store.get(clip)
        true = sync_scores(net, data["frames"], data["mel"], max_offset=10)
        shifted = sync_scores(net, data["frames"], shift_audio(data["mel"], 25), max_offset=10)
        assert len(true["curve"]) == 21 and true["lse_d"] == min(true["curve"])
        assert true["lse_c"] >= 0 and 0 <= true["lse_d"] <= 2
        better_c += true["lse_c"] > shifted["lse_c"]
        better_d += true["dist_at_zero"] < shifted["dist_at_zero"]
        offsets.append(true["offset"])
    assert better_c == len(clips) and better_d == len(clips), (better_c, better_d)
    assert min(abs(o) for o in offsets) <= 1  # the in-sync offset is found (within a frame)


def test_sync_scores_rejects_mismatched_inputs():
    net, _ = trained_syncnet()
    with pytest.raises(ValueError, match="same frames"):
        sync_scores(net, np.zeros((10, 64, 64, 3), np.uint8), np.zeros((9, 80, 16), np.float32))
