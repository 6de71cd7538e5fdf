"""Rendering frames of the bundled demo (`small` config, 256^2 output): the baked
real-time path (occupancy grid, marching only occupied cells) beside the training-style
path (stratified + importance samples over the whole box), on the same identity, audio
and cameras, with the PSNR between the two and the baked path's time per stage.

The same path runs beside it with the mouth's interior set three ways, whatever the bundled
weights hold: none, and ``model.mouth_interior`` (its colour grid looked up per shaded
sample, its painter over each opening's box) with the opening painted from the whole ray's
colour or from the cavity's alone (``model.interior_alone``). An interior the weights lack is
grown as a resumed run grows it (untrained), one they hold is dropped for "none": what the
three measure is the cost, not the picture.

Run: PYTHONPATH=. python -m pytest benchmarks/bench_render.py --benchmark-only -s
"""

import os

import numpy as np
import pytest
import torch
from conftest import min_seconds

from s3d_fast.render.api import DEMO_CHECKPOINT, DEMO_IMAGE, DEMO_SPEECH

FRAMES = 8  # one batch of frames per call, as `s3d-fast render --batch 8`
# Calls before the timed ones: a process's first frames also pay for oneDNN's kernels and
# the allocator's growth (the first test of a run measured about 5 % slower with one).
WARMUP = 3


@pytest.fixture(scope="module")
def demo():
    if not os.path.isdir(DEMO_CHECKPOINT):
        pytest.fail(
            f"the bundled demo checkpoint is missing ({DEMO_CHECKPOINT}); "
            "see docs/experiments.md, 'The demo checkpoint'"
        )
    from s3d_fast.data import audio
    from s3d_fast.model import load_model
    from s3d_fast.render import cameras
    from s3d_fast.render.source import load_source

    model = load_model(DEMO_CHECKPOINT, "cpu")
    src = load_source(DEMO_IMAGE, model.input_resolution)
    speech = audio.load_audio(DEMO_SPEECH)
    mel = torch.from_numpy(audio.audio_features(speech, FRAMES))
    poses = cameras.apply_offsets(cameras.static(src.c2w, FRAMES), cameras.orbit_offsets(FRAMES, 20.0))
    with torch.no_grad():
        source = model.prepare_source(  # with its camera, as s3d-fast render does: frames reproject it
            torch.from_numpy(src.image).permute(2, 0, 1)[None].float() / 255,
            None if src.mask is None else torch.from_numpy(src.mask.astype(np.int64))[None],
            torch.from_numpy(np.asarray(src.c2w, np.float32))[None],
            torch.from_numpy(np.asarray(src.K, np.float32))[None],
        )
        tokens = model.audio_tokens(mel)
        baked = model.fit_to_audio(model.bake(source), tokens)  # as s3d-fast render does
    c2w = torch.from_numpy(np.asarray(poses, np.float32))
    K = torch.from_numpy(np.asarray(src.K, np.float32))
    return model, source, baked, tokens, c2w, K


def _psnr(a, b):
    return float(-10 * torch.log10(torch.mean((a - b) ** 2)))


def _record_frames(record, group: str, impl: str, out: dict, seconds: float, **extra) -> None:
    """One real-time render call's frames/s and its time per frame by stage."""
    stages = {f"per frame {k}": f"{1000 * v / FRAMES:.1f} ms" for k, v in out["timings"].items()}
    record(group, impl, FRAMES / seconds, "frames/s", **extra, **stages)


def test_baked_real_time_path(benchmark, record, demo):
    model, source, baked, tokens, c2w, K = demo
    out = benchmark.pedantic(model.render_frames, (baked, tokens, c2w, K), rounds=3, warmup_rounds=WARMUP)
    seconds = min_seconds(benchmark)
    with torch.no_grad():
        ref = model.render(source, tokens[None], c2w[None], K[None], stratified=False)
    psnr = _psnr(out["rgb"], ref["rgb"][0])
    # The output blends in the source, so also compare what the radiance field alone renders.
    psnr_opacity = _psnr(out["opacity"], ref["opacity"][0])
    benchmark.extra_info["opacity_psnr_vs_training_style_db"] = psnr_opacity
    benchmark.extra_info["psnr_vs_training_style_db"] = psnr
    benchmark.extra_info["occupied_fraction"] = baked.occupied_fraction
    if seconds is not None:
        benchmark.extra_info["frames_per_s"] = FRAMES / seconds
        _record_frames(
            record,
            "render 256^2 small (demo)",
            "fused",
            out,
            seconds,
            psnr_vs_training_style=f"{psnr:.1f} dB",
            opacity_psnr=f"{psnr_opacity:.1f} dB",
        )


INTERIORS = {
    "none": {},
    "ray colour": {"mouth_interior": True},
    "interior alone": {"mouth_interior": True, "interior_alone": True},
}


@pytest.fixture(scope="module", params=list(INTERIORS))
def interior(demo, request):
    """The demo model with the mouth's interior set as ``INTERIORS[request.param]`` (the
    rest of its weights as they are)."""
    import dataclasses

    from s3d_fast.checkpoint import load_model_state
    from s3d_fast.model.s3d import S3DNeRF

    model, source, _, tokens, c2w, K = demo
    settings = {"mouth_interior": False, "interior_alone": False, **INTERIORS[request.param]}
    config = dataclasses.replace(model.config, model=dataclasses.replace(model.config.model, **settings))
    variant = S3DNeRF(config.model).eval()
    wanted = variant.state_dict()
    state = {k: v for k, v in model.state_dict().items() if k in wanted}  # an interior dropped
    grown = frozenset(k for k in wanted if k not in state)
    assert all(k.startswith("interior.") for k in grown), grown
    load_model_state(variant, state, may_miss=grown)
    variant.config = config
    with torch.no_grad():
        baked = variant.fit_to_audio(variant.bake(source), tokens)
    return request.param, variant, baked, tokens, c2w, K


def test_real_time_path_with_interior(benchmark, record, interior):
    name, model, baked, tokens, c2w, K = interior
    out = benchmark.pedantic(model.render_frames, (baked, tokens, c2w, K), rounds=3, warmup_rounds=WARMUP)
    assert out["rgb"].shape == (FRAMES, 3, 256, 256)
    assert bool(out["rgb"].isfinite().all())
    seconds = min_seconds(benchmark)
    if seconds is not None:
        _record_frames(record, "render 256^2 small (demo)", f"fused, mouth interior: {name}", out, seconds)


def test_training_style_path(benchmark, record, demo):
    model, source, baked, tokens, c2w, K = demo

    def render():
        with torch.no_grad():
            return model.render(source, tokens[None], c2w[None], K[None], stratified=False)

    benchmark.pedantic(render, rounds=2, warmup_rounds=0)
    seconds = min_seconds(benchmark)
    if seconds is not None:
        record("render 256^2 small (demo)", "training-style", FRAMES / seconds, "frames/s")


@pytest.fixture(scope="module")
def photo(demo):
    """A real photo (scikit-image's astronaut) baked as `s3d-fast render --image` bakes it:
    the photo kept where the speech does not move the face, turned through its own geometry."""
    import skimage.data

    from s3d_fast.render import Renderer, cameras

    model, _, _, tokens, _, _ = demo
    renderer = Renderer(DEMO_CHECKPOINT, "cpu")
    identity = renderer.bake(skimage.data.astronaut())
    baked = renderer.model.fit_to_audio(identity.baked, tokens)
    poses = cameras.apply_offsets(cameras.static(identity.source.c2w, FRAMES), cameras.orbit_offsets(FRAMES, 20.0))
    c2w = torch.from_numpy(np.asarray(poses, np.float32))
    K = torch.from_numpy(np.asarray(identity.source.K, np.float32))
    return renderer.model, baked, tokens, c2w, K


def test_photo_real_time_path(benchmark, record, photo):
    model, baked, tokens, c2w, K = photo
    out = benchmark.pedantic(model.render_frames, (baked, tokens, c2w, K), rounds=3, warmup_rounds=WARMUP)
    assert out["rgb"].shape == (FRAMES, 3, 256, 256)
    seconds = min_seconds(benchmark)
    if seconds is not None:
        _record_frames(record, "render 256^2 small (photo, orbit 20)", "fused", out, seconds)


@pytest.mark.parametrize("adapt_steps", [0, 100])
def test_photo_bake(benchmark, record, adapt_steps):
    """Baking a real photo (scikit-image's astronaut) as `s3d-fast render --image` does, without
    and with the bake-time adaptation (its default 100 steps): the wait before the first frame,
    face finding and alignment excluded."""
    import skimage.data

    from s3d_fast.render import Renderer

    renderer = Renderer(DEMO_CHECKPOINT, "cpu")
    source = renderer.source(skimage.data.astronaut())
    identity = benchmark.pedantic(renderer.bake, (source,), {"adapt_steps": adapt_steps}, rounds=1, warmup_rounds=0)
    assert identity.baked.grid.binaries.any()
    seconds = min_seconds(benchmark)
    if seconds is not None:
        record("bake a photo (astronaut)", f"adapt {adapt_steps} steps", seconds, "s")
