"""Peak memory of `s3d-fast render` for 10 s and for 10 min of speech: the render reads the
speech as a stream, so its memory must not grow with the speech's length. Beside it, the
whole-utterance path render took before (the log-mel of the whole file, then its audio
tokens), run up to its first frame, where its peak already is.

Opt-in (minutes of rendering): S3D_SLOW_BENCHMARKS=1 PYTHONPATH=. python -m pytest
benchmarks/bench_stream_memory.py -s. Each figure is the resident-set high-water mark
(VmHWM) of a fresh process, 2 threads, the bundled demo checkpoint and portrait, 256^2.
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


# The child reports its own resident-set high-water mark as it exits. Not the ru_maxrss that
# wait4 gives: a child started by vfork counts the parent's peak, taken over at exec.
PEAK_REPORTER = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as f:
        kib = next(line for line in f if line.startswith("VmHWM:")).split()[1]
    with open(os.environ["S3D_PEAK_FILE"], "w") as f:
        f.write(kib)

atexit.register(report)
kind, target, *rest = sys.argv[1:]
if kind == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<benchmark>", "exec"), {"__name__": "__main__"})
"""


def _peak_mb(argv, folder) -> float:
    """Peak resident memory of a fresh python running ``argv`` (["-m", module, ...] or
    ["-c", code, ...]), in MB."""
    peak_file = os.path.join(folder, "peak.kib")
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", S3D_PEAK_FILE=peak_file)
    done = subprocess.run([sys.executable, "-c", PEAK_REPORTER, *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:2]))} failed:\n{done.stderr[-2000:]}")
    with open(peak_file) as f:
        return int(f.read()) / 1024.0


def test_render_memory_does_not_grow_with_the_speech(tmp_path, record):
    streamed, whole = {}, {}
    for seconds in DURATIONS:
        wav = _write_speech(tmp_path / f"speech{seconds}.wav", seconds)
        out = tmp_path / f"out{seconds}.mp4"
        render = ["-m", "s3d_fast", "render", "--audio", wav, "--out", str(out), "--fps", str(FPS), "--device", "cpu"]
        streamed[seconds] = _peak_mb(render + ["--quiet"], tmp_path)
        whole[seconds] = _peak_mb(["-c", WHOLE_UTTERANCE, wav, str(FPS)], tmp_path)
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
