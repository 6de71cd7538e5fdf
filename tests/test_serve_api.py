"""``s3d-fast serve``'s HTTP API end to end on a live server (uvicorn on a free port), with
aiortc as the program on the other end of the peer connection."""

import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image

pytest.importorskip("aiortc", reason="the serve extra is not installed")  # the serve extra is optional

from render_fixtures import render_checkpoint  # noqa: E402, F401

from aids.serve_live import LiveServer, StreamClient  # noqa: E402
from s3d_fast.cli import main  # noqa: E402
from s3d_fast.data import video  # noqa: E402
from s3d_fast.render import api  # noqa: E402
from s3d_fast.serve.app import create_app  # noqa: E402
from s3d_fast.serve.limits import Limits  # noqa: E402

pytestmark = pytest.mark.slow


def wav_bytes(seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    buffer = io.BytesIO()
    import soundfile as sf

    sf.write(buffer, x, rate, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    limits = Limits(max_sessions=2, max_upload_bytes=1 << 20, max_image_pixels=1024 * 1024, max_speech_seconds=8)
    with LiveServer(create_app(api.Renderer(None, "cpu"), limits)) as live:
        assert live.wait_portrait(live.api("POST", "api/portraits/demo").json()["id"])["status"] == "ready"
        yield live


def new_session(server, seconds=1.0):
    sid = server.api("POST", "api/sessions").json()["id"]
    assert server.api("POST", f"api/sessions/{sid}/portrait", json={"id": "demo"}).ok
    files = {"file": ("speech.wav", wav_bytes(seconds))}
    assert server.api("POST", f"api/sessions/{sid}/speech", files=files).json()["seconds"] == pytest.approx(seconds)
    return sid


def test_render_endpoint_writes_what_s3d_fast_render_writes(server, tmp_path):
    (tmp_path / "speech.wav").write_bytes(wav_bytes(0.6))
    reply = server.api("POST", "api/render", data={"yaw": "8"}, files={"speech": ("s.wav", wav_bytes(0.6))})
    assert reply.status_code == 200 and reply.headers["content-type"] == "video/mp4"
    (tmp_path / "api.mp4").write_bytes(reply.content)
    args = ["render", "--image", api.DEMO_IMAGE, "--audio", str(tmp_path / "speech.wav"), "--yaw", "8"]
    args += ["--adapt-steps", "0"]  # as this server bakes (create_app's default; `s3d-fast serve` adapts as render)
    assert main([*args, "--out", str(tmp_path / "cli.mp4"), "--quiet", "--device", "cpu"]) == 0
    ours, theirs = video.read_video(str(tmp_path / "api.mp4")), video.read_video(str(tmp_path / "cli.mp4"))
    assert ours.frames.shape == theirs.frames.shape == (15, 256, 256, 3)
    assert np.array_equal(ours.frames, theirs.frames) and np.array_equal(ours.audio, theirs.audio)


def test_render_endpoint_refuses_bad_options_in_one_line(server):
    both = server.api("POST", "api/render", data={"text": "hi"}, files={"speech": ("s.wav", wav_bytes(0.5))})
    assert both.status_code == 400 and "either a sound file" in both.json()["error"]
    orbit = server.api("POST", "api/render", data={"text": "hi", "orbit": "10", "yaw": "5"})
    assert orbit.status_code == 400 and "--orbit" in orbit.json()["error"]


def test_portraits_listed_refused_without_a_face_and_deleted(server):
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 96, 3), np.uint8)).save(noise, "PNG")
    entry = server.api("POST", "api/portraits", files={"file": ("../../etc/passwd", noise.getvalue())}).json()
    state = server.wait_portrait(entry["id"])
    assert state["status"] == "error" and "no face found" in state["error"]
    listed = {p["id"]: p for p in server.api("GET", "api/portraits").json()["portraits"]}
    assert listed[entry["id"]]["name"] == "../../etc/passwd" and listed["demo"]["status"] == "ready"
    assert server.api("DELETE", f"api/portraits/{entry['id']}").ok
    assert server.api("GET", f"api/portraits/{entry['id']}").status_code == 404
    assert entry["id"] not in {p["id"] for p in server.api("GET", "api/portraits").json()["portraits"]}


def test_corrupt_and_oversized_uploads_are_refused_and_the_server_keeps_serving(server):
    sid = server.api("POST", "api/sessions").json()["id"]
    try:
        bad_image = server.api("POST", "api/portraits", files={"file": ("p.jpg", b"\xff\xd8 not a jpeg")})
        assert bad_image.status_code == 415 and "not an image" in bad_image.json()["error"]
        bad_sound = server.api("POST", f"api/sessions/{sid}/speech", files={"file": ("s.wav", b"RIFF....WAVE")})
        assert bad_sound.status_code == 415 and "the uploaded speech" in bad_sound.json()["error"]
        assert "/tmp" not in bad_sound.json()["error"]  # the server's own file names stay its own
        big = server.api("POST", f"api/sessions/{sid}/speech", files={"file": ("s.wav", b"\0" * (2 << 20))})
        assert big.status_code == 413 and "limit" in big.json()["error"]
        long = server.api("POST", f"api/sessions/{sid}/speech", files={"file": ("s.wav", wav_bytes(9))})
        assert long.status_code == 413 and "8 s" in long.json()["error"]
        wide = io.BytesIO()
        Image.new("RGB", (2000, 600)).save(wide, "PNG")
        pixels = server.api("POST", "api/portraits", files={"file": ("w.png", wide.getvalue())})
        assert pixels.status_code == 413 and "2000x600" in pixels.json()["error"]
        assert server.api("POST", f"api/sessions/{sid}/play").status_code == 409  # no portrait, no speech yet
        assert server.api("GET", "api/info").json()["limits"]["maxSessions"] == 2
        assert server.api("POST", f"api/sessions/{sid}/text", json={"text": "Still here."}).json()["seconds"] > 0.3
    finally:
        server.api("DELETE", f"api/sessions/{sid}")


def test_two_sessions_stream_at_once_and_a_third_is_refused(server):
    sids = [new_session(server, 1.2), new_session(server, 1.2)]
    clients = [StreamClient(server, sid) for sid in sids]
    try:
        refused = server.api("POST", "api/sessions")
        assert refused.status_code == 503 and "too many sessions" in refused.json()["error"]
        start = time.monotonic()
        for sid in sids:
            assert server.api("POST", f"api/sessions/{sid}/play").json()["playing"]
        for client in clients:
            while not any(m["type"] == "ended" for m in client.messages):
                assert time.monotonic() - start < 30, "an utterance did not end"
                time.sleep(0.1)
        for client in clients:
            # Frames arrive to both; how many is the machine's speed (benchmarks/bench_serve.py):
            # late ones are dropped, not queued, so every frame is accounted for.
            played = [f for f in client.frames if f[0] > start]
            ended = next(m for m in client.messages if m["type"] == "ended")
            assert played and ended["sent"] >= 1, (len(played), ended)
            assert client.audio_frames >= 1.2 * 50  # 20 ms packets: the whole utterance's sound, at least
            assert ended["sent"] + ended["dropped"] == 30  # every frame of 1.2 s at 25 fps, shown or dropped
    finally:
        for client, sid in zip(clients, sids):
            client.close()
            server.api("DELETE", f"api/sessions/{sid}")


def test_a_client_that_disconnects_mid_stream_is_torn_down(server):
    sid = new_session(server, 3.0)
    client = StreamClient(server, sid)
    assert server.api("POST", f"api/sessions/{sid}/play").ok
    deadline = time.monotonic() + 20
    while len(client.frames) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.close()  # mid-utterance
    while server.api("GET", f"api/sessions/{sid}").status_code != 404:
        assert time.monotonic() < deadline + 10, "the disconnected session was not closed"
        time.sleep(0.2)
    other = new_session(server, 0.5)  # the slot it held is free, and the server still streams
    assert server.api("DELETE", f"api/sessions/{other}").ok


def test_camera_from_the_data_channel_reaches_the_frames(server):
    sid = new_session(server, 0.5)
    client = StreamClient(server, sid)
    try:
        client.send_camera(yaw=20, pitch=-5, distance=1.2)
        deadline = time.monotonic() + 20
        while not any(m["type"] == "frame" and m["camera"]["yaw"] == 20 for m in client.messages):
            assert time.monotonic() < deadline, client.messages[-3:]
            time.sleep(0.05)
        assert server.api("GET", f"api/sessions/{sid}").json()["camera"] == {"yaw": 20, "pitch": -5, "distance": 1.2}
        assert server.api("POST", f"api/sessions/{sid}/camera", json={"yaw": "left"}).status_code == 400
    finally:
        client.close()
        server.api("DELETE", f"api/sessions/{sid}")


def test_a_token_is_checked_on_every_request_and_the_offer():
    app = create_app(api.Renderer(None, "cpu"), Limits(max_sessions=1), token="s3cret-token")
    with LiveServer(app) as live:
        assert live.api("GET", "").status_code == 401
        assert live.api("GET", "static/app.js").status_code == 401
        assert live.api("POST", "api/sessions/x/offer", json={"sdp": "", "type": "offer"}).status_code == 401
        wrong = live.api("GET", "api/info", headers={"Authorization": "Bearer s3cret-tokem"})
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]
        assert live.api("GET", "api/info", headers={"Authorization": "Bearer s3cret-token"}).ok
        with requests.Session() as browser:  # the printed address sets a cookie for the page's own files
            assert browser.get(live.url + "?token=s3cret-token", timeout=30).ok
            assert browser.get(live.url + "static/app.js", timeout=30).ok


def test_serve_off_localhost_needs_token_and_https_and_stops_on_sigterm(tmp_path):
    env = dict(os.environ, S3D_FAST_CACHE=os.environ.get("S3D_FAST_CACHE", str(tmp_path)), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "s3d_fast", "serve", "--host", "0.0.0.0", "--port", "0", "--device", "cpu"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert "self-signed certificate" in lines[0]
        url = re.search(r"open (https://\S+)", lines[1])
        assert url and "?token=" in url.group(1), lines
        base, token = url.group(1).split("?token=")
        import urllib3

        urllib3.disable_warnings()
        local = base.replace("0.0.0.0", "127.0.0.1")
        assert requests.get(local + "api/info", verify=False, timeout=30).status_code == 401
        reply = requests.get(local + "api/info", headers={"Authorization": f"Bearer {token}"}, verify=False, timeout=30)
        assert reply.ok and reply.json()["sessions"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and "terminated" in err, (proc.returncode, err)


def test_skip_to_drops_frames_without_rendering_them(server):
    identity = server.app.state.portraits.ready("demo").identity
    speech = np.frombuffer(wav_bytes(0.4)[44:], np.int16)
    frames = identity.stream([speech], 16000, batch=1)
    seen = []
    for frame in frames:
        seen.append(frame.index)
        if frame.index == 1:
            frames.skip_to(6)
    assert seen == [0, 1, 6, 7, 8, 9] and frames.n_frames == 10 and frames.stats.frames == 6


def test_the_server_adapts_each_portrait_as_it_is_told(render_checkpoint):  # noqa: F811
    renderer = api.Renderer(render_checkpoint, "cpu")
    app = create_app(renderer, adapt_steps=5)  # `s3d-fast serve --adapt-steps 5`
    seen = []  # what the page's progress bar reads after each step of the adaptation
    adapt = renderer.model.adapt

    def watched(src, rest, steps, on_step):
        return adapt(
            src,
            rest,
            steps,
            lambda done, total: (on_step(done, total), seen.append(app.state.portraits.get("demo").describe())),
        )

    renderer.model.adapt = watched
    entry = app.state.portraits.add_demo()
    assert entry.ready_event.wait(60) and entry.error is None, entry.error
    assert renderer.model.calls["adapt"] == [5]
    assert [s["stage"] for s in seen] == ["adapting to the portrait"] * 4 + ["baking"]
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and len(set(progress)) == 5, progress  # the bar moves with every step
    assert 0.1 < progress[0] and progress[-1] < 0.9, progress
    assert entry.describe()["progress"] == 1.0 and entry.stage == "ready"
