"""The microphone as a speech source: the voice gate that cuts utterances, and, on a live
server with aiortc as the page, a microphone track whose sound the head mouths, not echoed
back unless asked."""

import time

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the serve extra is not installed")

from aids.serve_live import LiveServer, SoundTrack, StreamClient, mouth_change  # noqa: E402
from s3d_fast.render import api  # noqa: E402
from s3d_fast.serve.app import create_app  # noqa: E402
from s3d_fast.serve.media import BLOCK, SAMPLE_RATE  # noqa: E402
from s3d_fast.serve.microphone import PAUSE, PREROLL, VoiceGate  # noqa: E402
from s3d_fast.serve.player import Player  # noqa: E402
from s3d_fast.serve.utterance import FPS, LiveSpeech, Utterance  # noqa: E402


def voice(seconds, rate=SAMPLE_RATE, level=0.3):
    """A vowel-like sound: harmonics of a gliding pitch, opening and closing four times a second."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.5 * t)) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (level * harmonics * (0.3 + 0.7 * np.clip(np.sin(2 * np.pi * 4 * t), 0, None))).astype(np.float32)


def test_the_voice_gate_starts_with_the_preroll_and_ends_after_the_pause():
    gate = VoiceGate(max_seconds=10)
    quiet = np.zeros(int(0.5 * SAMPLE_RATE), np.float32)
    events = gate.push(quiet) + gate.push(voice(1.0)[:1000]) + gate.push(voice(1.0)[1000:])
    assert events[0][0] == "start" and events[0][1].shape[0] == int(PREROLL * SAMPLE_RATE) + BLOCK
    assert {kind for kind, _ in events[1:]} == {"more"} and gate.speaking
    # A pause just shorter than PAUSE does not end it; reaching PAUSE does.
    short = gate.push(np.zeros(int((PAUSE - 0.04) * SAMPLE_RATE), np.float32))
    assert [k for k, _ in short] == ["more"] * len(short) and gate.speaking
    ends = gate.push(np.zeros(BLOCK * 3, np.float32))
    assert ("end", None) in ends and not gate.speaking
    assert gate.push(np.zeros(BLOCK * 20, np.float32)) == []  # silence starts nothing


def test_the_voice_gate_cuts_an_utterance_at_the_speech_limit():
    gate = VoiceGate(max_seconds=1.0)
    gate.push(np.zeros(int(PREROLL * SAMPLE_RATE), np.float32))
    events = gate.push(voice(1.5))
    kinds = [kind for kind, _ in events]
    # 1 s in all, the preroll included: the start block and 39 more, then the end; then a new start.
    assert kinds.count("start") == 2 and kinds.index("end") == int((1.0 - PREROLL) * SAMPLE_RATE / BLOCK)
    assert sum(block.shape[0] for kind, block in events[: kinds.index("end")]) == SAMPLE_RATE


@pytest.mark.slow
class StoppedClock:
    def __init__(self, now):
        self.seconds = now

    def now(self):
        return self.seconds


def test_live_speech_behind_its_voice_skips_frames_in_a_row_where_their_speech_is_in():
    # Rendering 0.4 s a frame, ten seconds behind frame 5's time: frame 5 is late.
    player = Player(StoppedClock(10.0), emit=lambda message: None)
    try:
        player.render_seconds = 0.4
        speech = LiveSpeech(10 * SAMPLE_RATE)
        utt = Utterance(identity=None, speech=speech, start_sample=0)
        speech.push(np.zeros(int(6 / FPS * SAMPLE_RATE), np.float32))  # up to frame 5's end
        assert player._skip(utt, 5, skipped_last=False)
        # After a skip, frame 6's speech is not in: frame 5 is rendered, late, not skipped too.
        assert not player._skip(utt, 5, skipped_last=True)
        speech.push(np.zeros(SAMPLE_RATE, np.float32))  # a second more of the voice arrives
        assert player._skip(utt, 5, skipped_last=True)
        # Speech that has ended is all in.
        ended = LiveSpeech(10 * SAMPLE_RATE)
        ended.end()
        assert player._skip(Utterance(identity=None, speech=ended, start_sample=0), 5, skipped_last=True)
    finally:
        player.close()


def test_the_head_mouths_the_microphone_live_and_the_voice_is_echoed_only_when_asked():
    sound = np.concatenate([voice(1.6), np.zeros(int(1.5 * SAMPLE_RATE), np.float32)])
    with LiveServer(create_app(api.Renderer(None, "cpu"))) as server:
        assert server.wait_portrait(server.api("POST", "api/portraits/demo").json()["id"])["status"] == "ready"
        for echo in (False, True):
            sid = server.api("POST", "api/sessions").json()["id"]
            assert server.api("POST", f"api/sessions/{sid}/portrait", json={"id": "demo"}).ok
            mic = SoundTrack.make(sound)
            client = StreamClient(server, sid, microphone=mic)
            try:
                client.send({"type": "microphone", "on": True, "echo": echo})
                time.sleep(0.5)
                mic.start()
                deadline = time.monotonic() + 30
                while not any(m["type"] == "ended" for m in client.messages):
                    assert time.monotonic() < deadline, "the utterance did not end after the pause"
                    time.sleep(0.1)
                time.sleep(0.5)
                frames = [(t, f) for t, _, f in client.frames if t > mic.started]
                change = mouth_change([f for _, f in frames])
                print("mouth change per frame:", np.round(change, 1))
                # Every frame of the voice is shown or, late on a slow machine, dropped: how many
                # are shown is the machine's speed (benchmarks/bench_serve.py).
                ended = next(m for m in client.messages if m["type"] == "ended")
                assert len(frames) >= 2 and ended["sent"] + ended["dropped"] >= 1.6 * 25, (len(frames), ended)
                assert change.max() > 4.0, change  # the mouth moves with the voice
                # The sound sent back: the voice itself only with echo, silence otherwise.
                back = np.concatenate([pcm for t, _, pcm in client.audio if t > mic.started]).astype(np.float32)
                loudest = np.abs(back).max() / 32768
                assert loudest > 0.1 if echo else loudest < 0.01, (echo, loudest)
            finally:
                client.close()
                server.api("DELETE", f"api/sessions/{sid}")
