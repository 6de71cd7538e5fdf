"""SynthTalk generation speed: one 256^2 frame (ray casting + shading), and the mel front end.

Run: PYTHONPATH=. python -m pytest benchmarks/bench_synth.py --benchmark-only
`extra_info["frames_per_s"]` is for one process; `s3d-fast synth` runs one per core.
"""

import numpy as np
import pytest
from conftest import median_seconds

from s3d_fast.data import audio
from s3d_fast.data.synthtalk import camera, head
from s3d_fast.data.synthtalk.generate import light_direction, render_view
from s3d_fast.data.synthtalk.identity import sample_identity


@pytest.mark.parametrize("size,supersample", [(256, 1), (256, 2)])
def test_render_frame(benchmark, record, size, supersample):
    ident = sample_identity(0)
    K = camera.intrinsics(size)
    state = head.FrameState(jaw=0.6, width=0.5, rounding=0.2)
    benchmark(render_view, ident, state, camera.front_camera(), K, size, light_direction(ident), supersample)
    seconds = median_seconds(benchmark)
    if seconds is not None:
        benchmark.extra_info["frames_per_s"] = 1.0 / seconds
        record(f"synth frame {size}^2 x{supersample} supersampling", "synthtalk", 1.0 / seconds, "frames/s")


def test_mel_windows_10s(benchmark, record):
    x = np.random.default_rng(0).normal(0, 0.1, 160000).astype(np.float32)
    a = audio.prepare(x, 16000)
    benchmark(audio.audio_features, a)
    seconds = median_seconds(benchmark)
    if seconds is not None:
        benchmark.extra_info["video_frames_per_s"] = a.num_video_frames / seconds
        record("mel windows", "librosa+numpy", a.num_video_frames / seconds, "video frames/s")
