"""A live ``s3d-fast serve`` app on a free port, in a thread or a process of its own, and a
WebRTC client of it (aiortc), for the serve tests and benchmark."""

from __future__ import annotations

import asyncio
import collections
import queue
import re
import subprocess
import sys
import threading
import time

import numpy as np
import requests
import uvicorn


class LiveServer:
    """``with LiveServer(app) as server: requests.get(server.url + "api/info")``."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app, self.host = app, host
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}/"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path.lstrip("/"), timeout=120, **kwargs)

    def wait_portrait(self, pid: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.api("GET", f"api/portraits/{pid}").json()
            if state["status"] != "baking" or time.monotonic() > deadline:
                return state
            time.sleep(0.1)


class ServerProcess(LiveServer):
    """``s3d-fast serve`` run as a user runs it, in a process of its own: a client in the
    measuring process then shares the cores with it, as a browser on the same machine
    would, but not Python's interpreter lock."""

    def __init__(self, *args: str):
        self.args = [sys.executable, "-m", "s3d_fast", "serve", "--port", "0", *args]

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # What it says is read as it comes (a full pipe would stop it), kept for an error.
        self.said = collections.deque(maxlen=200)
        lines: queue.Queue = queue.Queue()

        def read() -> None:
            for line in self.process.stdout:
                self.said.append(line)
                lines.put(line)
            lines.put(None)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the line with the URL, once it serves
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            found = re.search(r"open (http://\S+/)", line)
            if found:
                self.url = found.group(1)
                return self
        self.__exit__()
        raise RuntimeError(f"s3d-fast serve did not start: {''.join(self.said)[-2000:]}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(10)  # it reads to the end of what the process said
        if not self.reader.is_alive():
            self.process.stdout.close()


class SoundTrack:
    """A microphone for a program: ``SoundTrack.make(samples)`` is an aiortc audio track that
    plays 16 kHz mono float samples in real time from when ``start()`` is called (silence
    before and after); ``started`` is the time.monotonic() its first sample went out."""

    @staticmethod
    def make(samples):
        import fractions

        from aiortc.mediastreams import MediaStreamTrack
        from av import AudioFrame

        class _Track(MediaStreamTrack):
            kind = "audio"

            def __init__(self):
                super().__init__()
                self.pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype(np.int16)
                self.sent, self.begin, self.offset, self.started = 0, None, None, None

            def start(self):
                self.offset = self.sent  # the sample count at which the sound begins

            async def recv(self):
                if self.begin is None:
                    self.begin = time.monotonic()
                wait = self.begin + self.sent / 16000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                block = np.zeros(320, np.int16)
                if self.offset is not None:
                    at = self.sent - self.offset
                    if at == 0:
                        self.started = time.monotonic()
                    part = self.pcm[at : at + 320]
                    block[: part.shape[0]] = part
                frame = AudioFrame.from_ndarray(block[None], format="s16", layout="mono")
                frame.sample_rate, frame.pts = 16000, self.sent
                frame.time_base = fractions.Fraction(1, 16000)
                self.sent += 320
                return frame

        return _Track()


class StreamClient:
    """A program's peer connection to one session: receives its frames and sound (arrival
    times kept) and sends camera messages on the data channel, and ``microphone`` (an audio
    track, e.g. :class:`SoundTrack`) as its microphone."""

    def __init__(self, server: LiveServer, sid: str, microphone=None):
        self.server, self.sid, self.microphone = server, sid, microphone
        self.frames = []  # (arrival time.monotonic(), pts, rgb ndarray)
        self.audio = []  # (arrival time.monotonic(), pts, mono int16 ndarray at the frame's rate)
        # The arrival of the last RTP packet of each frame and sound packet, in the same order:
        # before aiortc's receive buffers, which hold a frame until the next one's first packet
        # comes and sound 4 packets (80 ms) more; a browser buffers (and aligns) both its own way.
        self.frames_on_wire, self.audio_on_wire = [], []
        self._wire = {}  # (kind, RTP timestamp less the first one) -> time.monotonic() its last packet came
        self.audio_frames = 0
        self.messages = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._run(self._connect()).result(30)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _connect(self):
        import json

        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = self.pc = RTCPeerConnection()
        if self.microphone is not None:
            pc.addTrack(self.microphone)
        else:
            pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        self.channel = pc.createDataChannel("control")
        self.channel.on("message", lambda m: self.messages.append(json.loads(m)))

        @pc.on("track")
        def on_track(track):
            self.loop.create_task(self._pull(track))

        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        answer = await asyncio.to_thread(self.server.api, "POST", f"api/sessions/{self.sid}/offer", json=offer)
        answer.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(**answer.json()))
        for receiver in pc.getReceivers():
            self._time_packets(receiver)
        for _ in range(300):
            if pc.connectionState == "connected" and self.channel.readyState == "open":
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the peer connection did not connect ({pc.connectionState})")

    def _time_packets(self, receiver) -> None:
        handle, kind, wire = receiver._handle_rtp_packet, receiver.track.kind, self._wire
        first = []  # aiortc's frames count their pts from the first frame's RTP timestamp

        async def timed(packet, arrival_time_ms):
            first[:] = first or [packet.timestamp]
            wire[(kind, (packet.timestamp - first[0]) % (1 << 32))] = time.monotonic()
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = timed

    async def _pull(self, track):
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            on_wire = self._wire.pop((track.kind, frame.pts % (1 << 32)), now)
            if track.kind == "video":  # the wire time first: a reader seeing frame i finds its wire time
                self.frames_on_wire.append(on_wire)
                self.frames.append((now, frame.pts, frame.to_ndarray(format="rgb24")))
            else:
                self.audio_frames += 1
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.audio.append((now, frame.pts, pcm))
                self.audio_on_wire.append(on_wire)

    def send_camera(self, **camera) -> None:
        self.send({"type": "camera", **camera})

    def send(self, message: dict) -> None:
        import json

        self.loop.call_soon_threadsafe(self.channel.send, json.dumps(message))

    def close(self) -> None:
        self._run(self.pc.close()).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def mouth_box(side: int = 256) -> tuple:
    """(x, y, w, h) around the demo portrait's lips and mouth (labels 2, 3 of its mask), in video pixels."""
    import os

    from s3d_fast.data.npz import load_npz
    from s3d_fast.render import api

    mask = load_npz(os.path.splitext(api.DEMO_IMAGE)[0] + ".npz")["mask"]
    ys, xs = np.nonzero(mask >= 2)
    s = side / mask.shape[0]
    x0, y0, x1, y1 = int(xs.min() * s) - 4, int(ys.min() * s) - 4, int(xs.max() * s) + 5, int(ys.max() * s) + 5
    return x0, y0, x1 - x0, y1 - y0


def mouth_change(frames) -> np.ndarray:
    """Mean absolute change of the mouth box between consecutive (H, W, 3) frames."""
    x, y, w, h = mouth_box(frames[0].shape[1])
    mouth = np.array([f[y : y + h, x : x + w].astype(np.float32) for f in frames])
    return np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))
