"""SynthTalk: the `synth` command end to end, ground-truth consistency, speech, visemes,
and the learnability check (speech predicts jaw opening on held-out identities)."""

import av
import numpy as np
import pytest

from s3d_fast.cli import main
from s3d_fast.data import audio
from s3d_fast.data.dataset import TalkingHeadDataset, _source_frames, load_manifest
from s3d_fast.data.synthtalk import camera, head, phonemes, speech, visemes
from s3d_fast.data.synthtalk.generate import SynthConfig, clip_timeline, identity_seed, light_direction, render_view
from s3d_fast.data.synthtalk.identity import sample_identity

ARGS = [
    "synth",
    "--identities",
    "2",
    "--clips",
    "1",
    "--seconds",
    "0.4",
    "--size",
    "48",
    "--views",
    "1",
    "--quiet",
    "--workers",
    "1",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    out = root / "ds"
    assert main(ARGS + ["--out", str(out), "--contact-sheet", str(root / "sheet.png")]) == 0
    return root, out


def test_synth_writes_schema_conformant_dataset(tiny):
    root, out = tiny
    m = load_manifest(out)  # validates schema and that every named file exists
    assert (m.fps, m.sample_rate, m.resolution) == (25, 16000, 48)
    assert [i["split"] for i in m.identities] == ["train", "heldout"]
    assert len(m.clips) == 2 and all(c["n_frames"] == 10 for c in m.clips)
    assert m.source["kind"] == "synthtalk"
    clip = m.clips[0]
    with np.load(m.path(clip["meta"]), allow_pickle=False) as z:
        T, R = 10, 48
        assert z["c2w"].shape == (T, 4, 4) and z["head_pose"].shape == (T, 4, 4) and z["K"].shape == (3, 3)
        assert z["visemes"].shape == (T, 3) and z["visemes"].min() >= 0 and z["visemes"].max() <= 1
        assert z["valid"].dtype == bool and z["valid"].all()
        assert z["masks"].shape == (T, R, R) and z["masks"].dtype == np.uint8
        assert set(np.unique(z["masks"])) <= {0, 1, 2, 3} and {0, 1, 2} <= set(np.unique(z["masks"]))
        assert z["view_c2w"].shape == (1, T, 4, 4) and z["view_masks"].shape == (1, T, R, R)
        # Head motion folded into the camera: c2w = inverse(head pose) @ physical camera.
        np.testing.assert_allclose(z["c2w"], np.linalg.inv(z["head_pose"]) @ z["camera_world"], atol=1e-5)
        for rot in z["c2w"][:, :3, :3]:
            np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-5)
    with av.open(m.path(clip["frames"])) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        assert c.streams.video[0].frames == 10
    assert audio.load_audio(m.path(clip["audio"])).num_video_frames == 10
    sheet = root / "sheet.png"
    assert sheet.stat().st_size > 1000


def test_synth_is_resumable_and_refuses_other_settings(tiny, capsys):
    _, out = tiny
    meta = out / "clips" / "id000_c00" / "meta.npz"
    before = meta.stat().st_mtime_ns
    assert main(ARGS + ["--out", str(out)]) == 0
    assert meta.stat().st_mtime_ns == before  # complete clips are not redone
    assert main(ARGS + ["--seed", "3", "--out", str(out)]) == 1
    assert "other settings" in capsys.readouterr().err
    assert main(["synth", "--out", str(out / "x"), "--size", "33"]) == 1


def test_dataset_items(tiny):
    _, out = tiny
    ds = TalkingHeadDataset(out, split="train", n_targets=2)
    assert len(ds) == 9
    item = ds[3]
    assert item["source"].shape == (3, 48, 48) and item["target"].shape == (2, 3, 48, 48)
    assert 0 <= float(item["target"].min()) and float(item["target"].max()) <= 1
    assert item["mel"].shape == (2, 80, 16)
    assert item["target_masks"].shape == (2, 48, 48) and item["target_c2w"].shape == (2, 4, 4)
    assert item["K"].shape == (3, 3) and item["visemes"].shape == (2, 3)
    assert ds[3]["source_index"] == item["source_index"]  # deterministic per index
    assert len(TalkingHeadDataset(out, split="heldout")) == 10
    free = TalkingHeadDataset(out, split="heldout", n_targets=3, views=True)[2]
    assert free["view_target"].shape == (3, 3, 48, 48) and free["view_c2w"].shape == (3, 4, 4)
    assert free["view_masks"].shape == (3, 48, 48) and free["view_index"] == 0
    # The extra view really is another camera on the same frames.
    assert not np.allclose(free["view_c2w"].numpy(), free["target_c2w"].numpy())


def test_source_frames_keep_the_least_open_mouths():
    valid = np.array([True, True, True, False, True, True, True, True])
    interior = np.array([0, 9, 4, 0, 0, 30, 2, 12])  # mouth-interior pixels per frame
    masks = np.zeros((8, 6, 6), np.uint8)
    for t, n in enumerate(interior):
        masks[t].flat[:n] = 3
    masks[:, -1, :] = 2  # lips do not count as an open mouth
    np.testing.assert_array_equal(_source_frames(valid, masks, 1.0), [0, 1, 2, 4, 5, 6, 7])
    np.testing.assert_array_equal(_source_frames(valid, None, 0.25), [0, 1, 2, 4, 5, 6, 7])
    # Valid interiors 0, 9, 4, 0, 30, 2, 12: the quarter quantile is 1.0, so the two shut
    # frames; frame 3 (invalid, shut) is never a source.
    np.testing.assert_array_equal(_source_frames(valid, masks, 0.25), [0, 4])
    np.testing.assert_array_equal(_source_frames(valid, masks, 0.5), [0, 2, 4, 6])
    # Ties are kept: a clip shut in most frames offers every shut frame.
    shut = np.zeros((5, 6, 6), np.uint8)
    np.testing.assert_array_equal(_source_frames(np.ones(5, bool), shut, 0.1), np.arange(5))


def test_dataset_draws_sources_with_closed_mouths(tiny):
    _, out = tiny
    m = load_manifest(out)
    clip = m.clips_in("train")[0]
    with np.load(m.path(clip["meta"])) as z:
        interior = (z["masks"] == 3).sum(axis=(1, 2))
    assert interior.max() > interior.min()  # the tiny clip's mouth does open
    ds = TalkingHeadDataset(out, split="train", n_targets=2, source_quantile=0.3)
    sources = {ds[i]["source_index"] for i in range(len(ds))}
    assert all(interior[s] <= np.quantile(interior, 0.3) for s in sources)
    anywhere = TalkingHeadDataset(out, split="train", n_targets=2)
    assert {anywhere[i]["source_index"] for i in range(len(anywhere))} - sources  # the default draws wider
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="source_quantile"):
            TalkingHeadDataset(out, split="train", source_quantile=bad)


def _project(c2w, K, p):
    cam = np.linalg.inv(c2w) @ np.append(p, 1.0)
    uv = K @ cam[:3]
    return uv[:2] / uv[2]


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (30, -10), (-35, 12)])
def test_cameras_and_masks_agree(yaw, pitch):
    # The lips' mask centroid must sit where K and c2w project the mouth: conventions hold.
    ident = sample_identity(7)
    size = 96
    K = camera.intrinsics(size)
    c2w = camera.free_view(camera.front_camera(), yaw, pitch)
    state = head.FrameState(jaw=0.5, width=0.5, rounding=0.0)
    _, labels = render_view(ident, state, c2w, K, size, light_direction(ident))
    ys, xs = np.nonzero(labels >= 2)
    _, half_w, my, _ = head.mouth_geometry(state)
    u, v = _project(c2w, K, np.array([0.0, my, 0.62 * ident.shape[2]]))
    assert abs(xs.mean() + 0.5 - u) < 2.5 and abs(ys.mean() + 0.5 - v) < 2.5


def test_mouth_interior_follows_jaw():
    ident = sample_identity(1)
    K = camera.intrinsics(96)
    areas = []
    for jaw in (0.0, 0.4, 0.9):
        _, labels = render_view(ident, head.FrameState(jaw=jaw), camera.front_camera(), K, 96, light_direction(ident))
        areas.append(int((labels == 3).sum()))
    assert areas[0] <= 2 < areas[1] < areas[2]


def test_identities_differ():
    a, b = sample_identity(0), sample_identity(1)
    assert a.skin != b.skin and a.shape != b.shape and a.voice.f0 != b.voice.f0
    for i in range(20):
        ident = sample_identity(i)
        assert ident.accessories and set(ident.accessories) <= {"glasses", "hat", "earrings"}


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    return spec[(f >= lo) & (f < hi)].sum()


def test_speech_acoustics():
    rng = np.random.default_rng(0)
    segs = [
        phonemes.Segment("_", 0, 0.1),
        phonemes.Segment("a", 0.1, 0.4),
        phonemes.Segment("s", 0.4, 0.7),
        phonemes.Segment("i", 0.7, 1.0),
        phonemes.Segment("_", 1.0, 1.2),
    ]
    x = speech.synthesize(segs, 1.2, speech.Voice(f0=120), rng)
    assert x.shape == (19200,) and x.dtype == np.float32 and np.abs(x).max() == pytest.approx(0.7, abs=1e-3)
    a, s, i, sil = x[2400:5600], x[7000:10000], x[12000:15500], x[16500:19000]
    assert _band_energy(s, 4000, 8000) > 5 * _band_energy(s, 0, 1500)  # /s/ is high-frequency noise
    assert _band_energy(a, 600, 900) > 3 * _band_energy(i, 600, 900)  # F1 of /a/ ~730 Hz, /i/ ~270 Hz
    # F2 of /i/ (~2290 Hz) against /a/ (~1090 Hz), relative to each vowel's energy.
    assert _band_energy(i, 2100, 2500) / _band_energy(i, 0, 8000) > 3 * _band_energy(a, 2100, 2500) / _band_energy(
        a, 0, 8000
    )
    assert np.sqrt(np.mean(sil**2)) < 0.01 * np.sqrt(np.mean(a**2))


def test_visemes_coarticulation():
    segs = [
        phonemes.Segment("a", 0, 0.3),
        phonemes.Segment("m", 0.3, 0.38),
        phonemes.Segment("a", 0.38, 0.7),
        phonemes.Segment("t", 0.7, 0.78),
        phonemes.Segment("u", 0.78, 1.0),
    ]
    v = visemes.viseme_track(segs, np.array([0.15, 0.34, 0.55, 0.5, 0.74, 0.9]), exposure=0.0)
    assert v[0, 0] > 0.8 and v[1, 0] < 0.15  # lips close for /m/ between open vowels
    assert v[4, 2] > v[3, 2] + 0.2  # anticipatory rounding before /u/
    assert v[5, 2] > 0.8


def test_utterance_timing_and_blinks():
    rng = np.random.default_rng(5)
    segs = phonemes.sample_utterance(rng, 3.0, rate=1.2)
    assert segs[0].start == 0 and segs[-1].end == 3.0 and segs[0].symbol == segs[-1].symbol == "_"
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))
    t = np.arange(250) / 25
    blink = visemes.blink_track(rng, t)
    assert blink.max() > 0.8 and (blink > 0.5).mean() < 0.15


def test_learnability_jaw_from_speech():
    """A small regressor on mel windows predicts jaw opening of held-out identities, R^2 >= 0.6."""
    cfg = SynthConfig(seconds=4.0, views=0)

    def data(indices, clips):
        xs, ys = [], []
        for i in indices:
            ident = sample_identity(identity_seed(cfg, i))
            for k in range(clips):
                tl = clip_timeline(ident, [cfg.seed, ident.seed, k], cfg)
                windows = audio.audio_features(audio.prepare(tl["audio"], 16000), tl["n_frames"])
                # Pool 8 mel bands x 2 frames: (80, 16) -> 160 features per video frame.
                xs.append(windows.reshape(-1, 10, 8, 8, 2).mean((2, 4)).reshape(len(windows), -1))
                ys.append(tl["visemes"][:, 0])
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = data(range(16), 1)
    x_test, y_test = data(range(1000, 1004), 2)  # identities never seen in training
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(x_train.shape[1], 1000)) / np.sqrt(x_train.shape[1])

    def features(x):  # one hidden ReLU layer with fixed random weights; ridge on top
        return np.maximum(((x - mu) / sd) @ proj, 0.0)

    f_train, f_test = features(x_train), features(x_test)
    fm, fs = f_train.mean(0), f_train.std(0) + 1e-6
    a, b = (f_train - fm) / fs, (f_test - fm) / fs
    w = np.linalg.solve(a.T @ a + 30.0 * np.eye(a.shape[1]), a.T @ (y_train - y_train.mean()))
    pred = b @ w + y_train.mean()
    r2 = 1 - ((pred - y_test) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum()
    print(f"learnability: held-out R^2 {r2:.3f}")
    assert r2 >= 0.6, f"held-out R^2 {r2:.3f}"


def test_supersampling_smooths_edges_and_keeps_masks():
    ident = sample_identity(2)
    K = camera.intrinsics(64)
    args = (ident, head.FrameState(jaw=0.5), camera.front_camera(), K, 64, light_direction(ident))
    rgb1, lab1 = render_view(*args)
    rgb2, lab2 = render_view(*args, supersample=2)
    assert rgb2.shape == rgb1.shape and lab2.shape == lab1.shape
    assert (lab1 != lab2).mean() < 0.03  # same picture, edges may move by a sub-pixel
    # Anti-aliased silhouettes have intermediate colours the hard render lacks.
    bg = np.round(np.asarray(ident.background) * 255)
    assert len({tuple(c) for c in rgb2.reshape(-1, 3)}) > len({tuple(c) for c in rgb1.reshape(-1, 3)})
    assert np.all(np.abs(rgb2[0, 0].astype(int) - bg) <= 1)


def test_parallel_rendering_is_identical():
    import concurrent.futures
    import multiprocessing

    from s3d_fast.data.synthtalk.generate import make_clip

    cfg = SynthConfig(seconds=0.16, size=32, views=1)
    ident = sample_identity(4)
    serial = make_clip(ident, [0, 4, 0], cfg)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = make_clip(ident, [0, 4, 0], cfg, pool=pool)
    np.testing.assert_array_equal(serial["frames"], parallel["frames"])
    np.testing.assert_array_equal(serial["view_frames"], parallel["view_frames"])
    np.testing.assert_array_equal(serial["meta"]["masks"], parallel["meta"]["masks"])


def test_dataset_skips_frames_without_a_face(tiny, tmp_path):
    import shutil

    _, out = tiny
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    meta = copy / "clips" / "id000_c00" / "meta.npz"
    with np.load(meta) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["valid"][[2, 5]] = False
    np.savez_compressed(meta, **arrays)
    ds = TalkingHeadDataset(copy, split="train", n_targets=2)
    starts = [ds[i]["target_index"] for i in range(len(ds))]
    assert starts == [0, 3, 6, 7, 8]  # windows touching frames 2 or 5 are gone
    assert all(ds[i]["source_index"] not in (2, 5) for i in range(len(ds)))
