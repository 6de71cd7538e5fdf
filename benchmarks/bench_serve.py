"""``s3d-fast serve`` end to end, as a viewer sees it: ``s3d-fast serve`` in a process of its
own and aiortc clients in this one, on the same machine (sharing its cores), the demo
checkpoint and portrait, 256^2, 2 threads, encoding included. Every time is taken on the
client from the media it receives (arrival of frames and sound), never from the server's
own timestamps:

- play to first frame: from sending "play" to the utterance's first frame arriving;
- sustained frames/s delivered, one session and two at once, and the 95th percentile of
  the interval between frames received;
- microphone to mouth: from a voice starting on the client's microphone track to the first
  received frame whose mouth differs from the head at rest, timed by the arrival of that
  frame's last packet (aiortc's receive buffer gives it out only when the next frame starts:
  printed too);
- opt-in (S3D_SLOW_BENCHMARKS=1, a minute of speech): the audio-video offset after 60 s,
  from clicks in the sound and the frames they belong to, both found in the received media,
  each timed by the arrival of its last packet (aiortc's receive buffers hold a frame until
  the next one starts and sound 80 ms more; printed too, as they give them out).

Run: PYTHONPATH=. python -m pytest benchmarks/bench_serve.py --benchmark-only -s
"""

import os
import time

import numpy as np
import pytest
from conftest import median_seconds

pytest.importorskip("aiortc", reason="the serve extra is not installed")

from aids.serve_live import ServerProcess, SoundTrack, StreamClient, mouth_box  # noqa: E402

SLOW = os.environ.get("S3D_SLOW_BENCHMARKS") == "1"
RATE = 16000
VIDEO_CLOCK = 90000
SUSTAINED_SECONDS = 6.0


def voice(seconds, level=0.3):
    """A vowel-like sound: harmonics of a gliding pitch, opening and closing four times a second."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.5 * t)) / RATE
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (level * harmonics * (0.3 + 0.7 * np.clip(np.sin(2 * np.pi * 4 * t), 0, None))).astype(np.float32)


def wav(samples):
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV")
    return buffer.getvalue()


def unwrap(pts, modulus=1 << 32):
    """RTP timestamps (from a random origin, modulo 2^32) as a rising sequence."""
    steps = (np.diff(np.asarray(pts, np.int64)) + modulus // 2) % modulus - modulus // 2
    return np.concatenate([[0], np.cumsum(steps)])


@pytest.fixture(scope="module")
def server():
    from s3d_fast.render import api

    if not os.path.isdir(api.DEMO_CHECKPOINT):
        pytest.fail(f"the bundled demo checkpoint is missing ({api.DEMO_CHECKPOINT})")
    with ServerProcess("--device", "cpu") as live:
        assert live.wait_portrait(live.api("POST", "api/portraits/demo").json()["id"])["status"] == "ready"
        yield live


class Viewer:
    """A session with the demo portrait and a client connected to it."""

    def __init__(self, server, speech=None, microphone=None):
        self.server = server
        self.sid = server.api("POST", "api/sessions").json()["id"]
        assert server.api("POST", f"api/sessions/{self.sid}/portrait", json={"id": "demo"}).ok
        if speech is not None:
            reply = server.api("POST", f"api/sessions/{self.sid}/speech", files={"file": ("s.wav", wav(speech))})
            assert reply.ok, reply.text
        self.client = StreamClient(server, self.sid, microphone=microphone)
        deadline = time.monotonic() + 10
        while not self.client.frames:  # the still picture: the connection carries video
            assert time.monotonic() < deadline, "no picture arrived"
            time.sleep(0.01)

    def media_after(self, t0):
        """The first received frame sent after client time ``t0``, found from the picture track
        alone: frame timestamps advance with the sender's clock, so a frame's timestamp less its
        arrival is at most that clock's offset (minus the least transit), reached by any frame."""
        frames = list(self.client.frames)
        pts = unwrap([p for _, p, _ in frames]) / VIDEO_CLOCK
        arrival = np.array([a for a, _, _ in frames])
        offset = np.max((pts - arrival)[arrival < t0])
        later = np.nonzero(pts - offset > t0 + 0.02)[0]  # 20 ms: above any transit on one machine
        return None if later.size == 0 else int(later[0])

    def play(self):
        t0 = time.monotonic()
        assert self.server.api("POST", f"api/sessions/{self.sid}/play").ok
        return t0

    def wait_ended(self, since, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            ended = [m for m in self.client.messages[since:] if m["type"] == "ended"]
            if ended:
                return ended[0]
            assert time.monotonic() < deadline, "the utterance did not end"
            time.sleep(0.02)

    def close(self):
        self.client.close()
        self.server.api("DELETE", f"api/sessions/{self.sid}")


def uptime():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def test_play_to_first_frame(benchmark, record, server):
    viewer = Viewer(server, speech=voice(1.0))
    waits = []

    def settle():
        viewer.server.api("POST", f"api/sessions/{viewer.sid}/stop")
        time.sleep(0.7)  # the still picture again, sent at least once

    def play_until_first_frame():
        t0 = viewer.play()
        while (first := viewer.media_after(t0)) is None:
            time.sleep(0.002)
        waits.append(viewer.client.frames[first][0] - t0)

    try:
        benchmark.pedantic(play_until_first_frame, setup=settle, rounds=5, warmup_rounds=1)
    finally:
        viewer.close()
    seconds = median_seconds(benchmark)
    if seconds is not None:
        ms = 1000 * np.median(waits[-5:])
        print(f"\nplay to first frame (ms): {np.round(1000 * np.array(waits), 1)}; load {uptime()}")
        record("serve: play to first frame (demo, 256^2)", "fused", ms, "ms", goal="300 ms", load=uptime())


def sustained(server, n_sessions):
    viewers = [Viewer(server, speech=voice(SUSTAINED_SECONDS)) for _ in range(n_sessions)]
    try:
        marks = [len(v.client.messages) for v in viewers]
        starts = [v.play() for v in viewers]
        ends = [v.wait_ended(m, timeout=SUSTAINED_SECONDS + 30) for v, m in zip(viewers, marks)]
        rates, intervals = [], []
        for viewer, t0, ended in zip(viewers, starts, ends):
            first = viewer.media_after(t0)
            arrivals = np.array([a for a, _, _ in viewer.client.frames[first : first + ended["sent"]]])
            rates.append((arrivals.shape[0] - 1) / (arrivals[-1] - arrivals[0]))
            intervals.extend(np.diff(arrivals))
        return float(np.mean(rates)), 1000 * float(np.percentile(intervals, 95)), ends
    finally:
        for viewer in viewers:
            viewer.close()


@pytest.mark.parametrize("n_sessions", [1, 2])
def test_sustained_frames_per_second(benchmark, record, server, n_sessions):
    result = {}

    def run():
        result["fps"], result["p95"], result["ended"] = sustained(server, n_sessions)

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    if median_seconds(benchmark) is not None:
        dropped = sum(e["dropped"] for e in result["ended"])
        sent = sum(e["sent"] for e in result["ended"])
        print(
            f"\n{n_sessions} session(s): {result['fps']:.1f} frames/s each, p95 interval {result['p95']:.0f} ms, "
            f"{sent} sent, {dropped} dropped; load {uptime()}"
        )
        record(
            "serve: sustained frames/s delivered per session (demo, 256^2)",
            f"{n_sessions} session{'s' if n_sessions > 1 else ''}",
            result["fps"],
            "frames/s",
            p95_interval=f"{result['p95']:.0f} ms",
            dropped=f"{dropped}/{sent + dropped}",
            load=uptime(),
        )


def test_microphone_to_mouth_moving(benchmark, record, server):
    x, y, w, h = mouth_box()
    mic = SoundTrack.make(voice(1.0))
    viewer = Viewer(server, microphone=mic)
    viewer.client.send({"type": "microphone", "on": True, "echo": False})
    delays, given_out = [], []  # by the frame's last packet; as aiortc's receive buffer gives it out

    def settle():
        mark = len(viewer.client.messages)
        time.sleep(0.3)
        return (mark,), {}

    def speak(mark):
        rest = viewer.client.frames[-1][2][y : y + h, x : x + w].astype(np.float32)
        seen = len(viewer.client.frames)
        mic.start()
        while True:
            frames = viewer.client.frames[seen:]
            moved = [
                i for i, (_, _, f) in enumerate(frames, seen) if np.abs(f[y : y + h, x : x + w] - rest).mean() > 3.0
            ]
            if moved and mic.started is not None:
                delays.append(viewer.client.frames_on_wire[moved[0]] - mic.started)
                given_out.append(viewer.client.frames[moved[0]][0] - mic.started)
                break
            time.sleep(0.002)
        viewer.wait_ended(mark)  # the utterance ends after the pause; the head rests again

    try:
        time.sleep(0.5)
        benchmark.pedantic(speak, setup=settle, rounds=4, warmup_rounds=1)
    finally:
        viewer.close()
    if median_seconds(benchmark) is not None:
        ms = 1000 * np.median(delays[-4:])
        print(f"\nmicrophone to mouth moving (ms): {np.round(1000 * np.array(delays), 1)}; load {uptime()}")
        print(f"the same as aiortc's receive buffer gives the frames out: {np.round(1000 * np.array(given_out), 1)}")
        record("serve: microphone sound to mouth moving (demo, 256^2)", "fused", ms, "ms", goal="250 ms")


@pytest.mark.skipif(not SLOW, reason="opt-in: set S3D_SLOW_BENCHMARKS=1 (streams a minute of speech)")
def test_audio_video_offset_after_60_seconds(record, server):
    from aids.av_markers import offsets_from_markers, speech_with_clicks

    speech, clicks = speech_with_clicks(voice(60.0))
    viewer = Viewer(server, speech=speech)
    try:
        mark = len(viewer.client.messages)
        t0 = viewer.play()
        ended = viewer.wait_ended(mark, timeout=120)
        client, first = viewer.client, viewer.media_after(t0)
        frames, audio = client.frames[first:], [(a, pcm) for a, _, pcm in client.audio if a > t0]
        wire_frames = [(w, p, f) for w, (_, p, f) in zip(client.frames_on_wire[first:], frames)]
        wire_audio = [(w, pcm) for w, (a, _, pcm) in zip(client.audio_on_wire, client.audio) if a > t0]
    finally:
        viewer.close()
    # The server's demo portrait, baked here as it bakes it (the frames are told apart by their mouths).
    from s3d_fast.render import api, stream

    renderer = api.Renderer(None, "cpu")
    identity = renderer.bake(renderer.source(api.DEMO_IMAGE))
    stream.reference_grid(identity)
    offsets = offsets_from_markers(identity, speech, clicks, wire_frames, wire_audio)
    released = offsets_from_markers(identity, speech, clicks, frames, audio)
    print(f"\naudio-video offset (ms, video later) at clicks {clicks} s: {np.round(offsets, 1)}; load {uptime()}")
    print(f"the same as aiortc's receive buffers give them out: {np.round(released, 1)}")
    print(f"sent {ended['sent']}, dropped {ended['dropped']}")
    record(
        "serve: audio-video offset on the client (demo, 256^2)",
        "after 60 s",
        offsets[-1],
        "ms",
        at_start=f"{offsets[0]:.1f} ms",
        after_aiortc_buffers=f"{released[-1]:.1f} ms",
        goal="under 40 ms",
    )
    assert abs(offsets[-1]) < 1000 / 25 * 3, offsets  # far beyond a frame would be a broken clock
