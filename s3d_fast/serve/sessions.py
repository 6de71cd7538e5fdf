"""Sessions: one per page (or program) connected, each with its own portrait, speech,
camera, peer connection and render thread; nothing is shared between them but the
read-only baked portraits. A session is closed when its peer connection fails or closes,
when the page says goodbye, when it has been idle for ``idle_seconds``, and at shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Optional

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer

from .camera import Camera
from .errors import LimitError, NotFound, ServeError
from .limits import Limits
from .media import FrameTrack, MediaClock, SpeechTrack
from .microphone import Microphone
from .player import Player
from .portraits import Portrait
from .speech import Speech

log = logging.getLogger("s3d_fast.serve")


def undelayed_sound(receiver) -> None:
    """The microphone's packets go to its decoder as soon as each is complete. aiortc's receiver
    holds 4 more packets (80 ms) back first, to smooth the playback of sound it plays; the
    server plays none, it only listens, and a voice heard 80 ms later moves the mouth 80 ms later.
    Replaces a private member of aiortc's receiver; without it (another aiortc) nothing changes."""
    name = "_RTCRtpReceiver__jitter_buffer"
    held = getattr(receiver, name, None)
    if isinstance(held, JitterBuffer) and not held._is_video:
        setattr(receiver, name, JitterBuffer(capacity=held.capacity, prefetch=0))


class Session:
    def __init__(self, sid: str, max_speech_seconds: float = 60.0):
        self.id = sid
        self.created = self.last_seen = time.monotonic()
        self.clock = MediaClock()
        self.player = Player(self.clock, self._emit)
        self.microphone = Microphone(self.player, max_speech_seconds)
        self.portrait: Optional[Portrait] = None
        self.speech: Optional[Speech] = None
        self.pc: Optional[RTCPeerConnection] = None
        self.channel = None
        self.closed = False

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def _emit(self, message: dict) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message))

    @property
    def connected(self) -> bool:
        return self.pc is not None and self.pc.connectionState in ("new", "connecting", "connected")

    def set_portrait(self, portrait: Portrait) -> None:
        self.portrait = portrait
        self.player.set_portrait(portrait.identity, portrait.rest)

    def on_message(self, text: str) -> None:
        self.touch()
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "microphone":
            self.microphone.enable(message.get("on") is True, message.get("echo") is True)
        elif isinstance(message, dict) and message.get("type") == "camera":
            try:
                self.player.set_camera(Camera.parse(message))
            except ServeError as exc:
                self._emit({"type": "error", "message": str(exc)})

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        if self.pc is not None:
            await self.pc.close()
        pc = self.pc = RTCPeerConnection()

        @pc.on("datachannel")
        def on_datachannel(channel):
            self.channel = channel
            channel.on("message", self.on_message)

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":  # the page's microphone (sent only while it is on)
                for receiver in pc.getReceivers():
                    if receiver.track is track:
                        undelayed_sound(receiver)
                self.microphone.listen(track)

        pc.addTrack(SpeechTrack(self.clock, self.player))
        pc.addTrack(FrameTrack(self.clock, self.player))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError) as exc:
            raise ServeError(f"the WebRTC offer is not usable: {exc}") from None
        return pc.localDescription

    def status(self) -> dict:
        utt = self.player.utterance or self.player.last
        return {
            "id": self.id,
            "portrait": None if self.portrait is None else self.portrait.id,
            "speech": None if self.speech is None else self.speech.describe(),
            "connection": None if self.pc is None else self.pc.connectionState,
            "playing": self.player.utterance is not None,
            "microphone": {
                "on": self.microphone.on,
                "echo": self.player.echo,
                "speaking": self.microphone.gate.speaking,
            },
            "camera": self.player.camera.describe(),
            "utterance": None
            if utt is None
            else {"sent": utt.sent, "dropped": utt.dropped + utt.skipped, "firstFrameMs": utt.first_frame_ms},
        }

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.microphone.close()
        self.player.close()
        if self.pc is not None:
            await self.pc.close()
        self.pc = self.channel = None


class Sessions:
    def __init__(self, limits: Limits):
        self.limits = limits
        self._sessions: dict[str, Session] = {}
        self._reaper: Optional[asyncio.Task] = None

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> Session:
        if len(self._sessions) >= self.limits.max_sessions:
            raise LimitError(
                f"too many sessions: this server takes {self.limits.max_sessions} at once "
                "(s3d-fast serve --max-sessions); close another page or try again later",
                503,
            )
        session = Session(secrets.token_urlsafe(12), self.limits.max_speech_seconds)
        self._sessions[session.id] = session
        return session

    def get(self, sid: str) -> Session:
        session = self._sessions.get(sid)
        if session is None:
            raise NotFound("this session has ended (idle, disconnected or the server restarted); reload the page")
        session.touch()
        return session

    async def close(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            await session.close()

    async def close_all(self) -> None:
        for sid in list(self._sessions):
            await self.close(sid)

    async def reap(self) -> None:
        """Close the sessions whose connection failed or closed, and the idle ones."""
        now = time.monotonic()
        for sid, session in list(self._sessions.items()):
            state = None if session.pc is None else session.pc.connectionState
            gone = state in ("failed", "closed")
            idle = now - session.last_seen > self.limits.idle_seconds and state != "connected"
            if gone or idle:
                log.info("closing session %s (%s)", sid, "disconnected" if gone else "idle")
                await self.close(sid)

    def start_reaper(self, every: float = 2.0) -> None:
        async def loop():
            while True:
                await asyncio.sleep(every)
                await self.reap()

        self._reaper = asyncio.get_running_loop().create_task(loop())

    async def stop_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
