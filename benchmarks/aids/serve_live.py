"""A live ``s3d-fast serve`` app on a free port in a thread, and a WebRTC client of it
(aiortc), for the serve tests and benchmark."""

from __future__ import annotations

import asyncio
import threading
import time

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


class StreamClient:
    """A program's peer connection to one session: receives its frames and sound (the
    frames' arrival times kept) and sends camera messages on the data channel."""

    def __init__(self, server: LiveServer, sid: str):
        self.server, self.sid = server, sid
        self.frames = []  # (arrival time.monotonic(), pts, rgb ndarray)
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
        for _ in range(300):
            if pc.connectionState == "connected" and self.channel.readyState == "open":
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the peer connection did not connect ({pc.connectionState})")

    async def _pull(self, track):
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.frames.append((time.monotonic(), frame.pts, frame.to_ndarray(format="rgb24")))
            else:
                self.audio_frames += 1

    def send_camera(self, **camera) -> None:
        import json

        message = json.dumps({"type": "camera", **camera})
        self.loop.call_soon_threadsafe(self.channel.send, message)

    def close(self) -> None:
        self._run(self.pc.close()).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
