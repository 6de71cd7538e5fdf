"""Peak memory of `s3d-fast render` for 10 s and for 10 min of speech: the render reads the
speech as a stream, so its memory must not grow with the speech's length. Beside it, the
whole-utterance path render took before (the log-mel of the whole file, then its audio
tokens), run up to its first frame, where its peak already is.

Opt-in (minutes of rendering): S3D_SLOW_BENCHMARKS=1 PYTHONPATH=. python -m pytest
benchmarks/bench_stream_memory.py -s. Each figure is the resident-set high-water mark
(ru_maxrss) of a fresh process, 2 threads, the bundled demo checkpoint and portrait, 256^2.
The speech is synthetic (harmonics at a syllable rate, 16 kHz). The frame rate,
S3D_STREAM_MEMORY_FPS (default 1, so 10 min renders in minutes on two cores), sets only how
many frames are made; the whole speech is read, resampled, turned into log-mel and audio
tokens at any rate, and no per-frame state is kept.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

SLOW = os.environ.get("S3D_SLOW_BENCHMARKS") == "1"
pytestmark = pytest.mark.skipif(not SLOW, reason="opt-in: set S3D_SLOW_BENCHMARKS=1 (renders 10 min of speech)")
FPS = int(os.environ.get("S3D_STREAM_MEMORY_FPS", "1"))
DURATIONS = (10, 600)  # seconds of speech

# The path `s3d-fast render` took before it streamed: the whole file, its whole log-mel and
# all its audio tokens, then the grid fit, up to the first frame.
WHOLE_UTTERANCE = """
import sys, torch
from s3d_fast.render import api
speech = api.load_speech(sys.argv[1], int(sys.argv[2]))
identity = api.Renderer(device="cpu").bake(api.DEMO_IMAGE)
next(iter(identity.render(speech, fps=int(sys.argv[2]))))
"""


def _write_speech(path, seconds: int, rate: int = 16000) -> str:
    from s3d_fast.data import audio

    t = np.arange(seconds * rate) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.2 * t) > -0.6)
    noise = np.random.default_rng(0).standard_normal(t.shape[0]) * 0.02
    audio.write_wav(path, (0.3 * voiced * syllables + noise).astype(np.float32), rate)
    return str(path)


def _peak_mb(argv) -> float:
    """ru_maxrss of a fresh process running ``argv``, in MB."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.communicate()
    if status != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed:\n{err[-2000:]}")
    return usage.ru_maxrss / 1024.0  # kB on Linux


def test_render_memory_does_not_grow_with_the_speech(tmp_path, record):
    streamed, whole = {}, {}
    for seconds in DURATIONS:
        wav = _write_speech(tmp_path / f"speech{seconds}.wav", seconds)
        out = tmp_path / f"out{seconds}.mp4"
        render = [sys.executable, "-m", "s3d_fast", "render", "--audio", wav, "--out", str(out)]
        streamed[seconds] = _peak_mb(render + ["--fps", str(FPS), "--device", "cpu", "--quiet"])
        whole[seconds] = _peak_mb([sys.executable, "-c", WHOLE_UTTERANCE, wav, str(FPS)])
        assert out.is_file()
    short, long = DURATIONS
    per_minute = 60 * (streamed[long] - streamed[short]) / (long - short)
    for seconds in DURATIONS:
        record("render peak memory", f"streamed, {seconds} s of speech", streamed[seconds], "MB")
        record("render peak memory", f"whole utterance to frame 0, {seconds} s", whole[seconds], "MB")
    record("render peak memory", "streamed growth", per_minute, "MB per minute of speech", fps=FPS)
    print(f"\npeak memory, streamed render: {streamed}; whole-utterance path to frame 0: {whole}")
    # Bounded, not growing: 10 min of speech costs at most 40 MB more than 10 s (allocator noise).
    assert streamed[long] - streamed[short] < 40.0, streamed
