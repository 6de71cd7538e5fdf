"""The lip-sync expert: shapes, gradients to the frames, save/load, and that a short
training on a tiny SynthTalk set tells in-sync from shifted audio on unseen identities."""

import numpy as np
import pytest
import torch
from _sync_data import sync_set, trained_syncnet

from s3d_fast.model.syncnet import (
    SyncNet,
    SyncNetConfig,
    freeze,
    load_syncnet,
    lower_face,
    save_syncnet,
    sync_loss,
    sync_probability,
)
from s3d_fast.training.syncnet import train_syncnet
from s3d_fast.training.syncnet_pairs import load_arrays, sample_pairs

SMALL = SyncNetConfig(face_size=24, face_channels=(8, 16, 16), audio_channels=(8, 16, 16), embed_dim=16)


def test_lower_face_crop_and_shapes():
    frames = torch.rand(2, 5, 3, 64, 80)
    crops = lower_face(frames, 16)
    assert crops.shape == (2, 5, 3, 16, 16)
    # Area resize of a constant region stays that constant; the top half is never read.
    f = torch.zeros(1, 3, 64, 64)
    f[..., 32:, 16:48] = 0.7
    f[..., :32, :] = 1.0
    assert torch.allclose(lower_face(f, 16), torch.full((1, 3, 16, 16), 0.7))


def test_embeddings_are_unit_vectors_and_probability_in_open_interval():
    net = SyncNet(SMALL).eval()
    v = net.embed_video(torch.rand(3, 5, 3, 48, 48))
    a = net.embed_audio(torch.randn(3, 80, 16))
    assert v.shape == a.shape == (3, 16)
    assert torch.allclose(v.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    p = net(torch.rand(3, 5, 3, 48, 48), torch.randn(3, 5, 80, 16))  # per-frame windows: middle one used
    assert p.shape == (3,) and bool(((p > 0) & (p < 1)).all())
    # The free function: identical embeddings give the top of the range, opposite the bottom.
    assert sync_probability(v, v, 10.0, -5.0)[0] > sync_probability(v, -v, 10.0, -5.0)[0]
    mel5 = torch.randn(2, 5, 80, 16)
    assert torch.allclose(net.embed_audio(mel5), net.embed_audio(mel5[:, 2]))


def test_sync_loss_gradients_reach_frames_not_frozen_weights():
    net = freeze(SyncNet(SMALL))
    frames = torch.rand(2, 5, 3, 40, 40, requires_grad=True)
    loss = sync_loss(net, frames, torch.randn(2, 80, 16))
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    g = frames.grad
    assert g is not None and g.abs().sum() > 0
    assert g[..., :20, :].abs().sum() == 0  # upper face: outside the crop
    assert g[..., 20:, 10:30].abs().min() > 0  # every pixel of the crop feeds the loss
    assert all(p.grad is None for p in net.parameters())
    # A parent module's .train() must not put a frozen expert's batch-norm back in training mode.
    torch.nn.Sequential(net).train()
    assert not net.training


def test_bad_inputs_raise_clear_errors():
    net = SyncNet(SMALL)
    with pytest.raises(ValueError, match="frames must be"):
        net.embed_video(torch.rand(2, 4, 3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        net.embed_video(torch.zeros(2, 5, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mel must be"):
        net.embed_audio(torch.randn(2, 80, 12))
    with pytest.raises(ValueError, match="crop_rows"):
        SyncNetConfig(crop_rows=(0.8, 0.5)).validate()


def test_save_load_roundtrip(tmp_path):
    net = SyncNet(SMALL).eval()
    path = tmp_path / "s.safetensors"
    save_syncnet(path, net)
    back = load_syncnet(path)
    assert back.config == SMALL and not back.training
    x, m = torch.rand(2, 5, 3, 32, 32), torch.randn(2, 80, 16)
    assert torch.equal(net(x, m), back(x, m))
    bad = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(ValueError, match="not a SyncNet"):
        load_syncnet(bad)


def test_pairs_are_balanced_and_negatives_are_shifted():
    from s3d_fast.data.dataset import ClipStore, load_manifest

    m = load_manifest(sync_set())
    arr = load_arrays(ClipStore(m), m.clips_in("train")[:2], SyncNetConfig(face_size=16))
    v, a, y = sample_pairs(arr, 200, np.random.default_rng(0), min_offset=5)
    assert y.sum() == 100
    assert np.array_equal(a[:100], v[:100] + 2)  # positives: the middle frame's own window
    assert np.all(np.abs(a[100:] - (v[100:] + 2)) >= 5)
    clip_of = np.repeat(np.arange(len(arr.clip_len)), arr.clip_len)
    assert np.array_equal(clip_of[a], clip_of[v])  # same clip: same voice, wrong time


def test_training_is_deterministic():
    kw = dict(steps=3, batch_size=8, seed=7, progress=False, eval_pairs=16)
    n1, s1 = train_syncnet(sync_set(), SMALL, **kw)
    n2, s2 = train_syncnet(sync_set(), SMALL, **kw)
    assert s1["loss_curve"] == s2["loss_curve"]
    for (k, p1), p2 in zip(n1.state_dict().items(), n2.state_dict().values()):
        assert torch.equal(p1, p2), k


def test_short_training_beats_chance_on_unseen_identities():
    _, stats = trained_syncnet()
    assert stats["heldout_source"] == "heldout split"  # identities never trained on
    assert stats["steps"] == 600
    assert stats["heldout_accuracy"] >= 0.6, stats  # chance 0.5; 512 pairs: 1 sd = 0.022
    assert stats["heldout_auc"] >= 0.65, stats
    assert stats["heldout_p_pos"] > stats["heldout_p_neg"]
    assert np.mean(stats["loss_curve"][-20:]) < np.mean(stats["loss_curve"][:20])
