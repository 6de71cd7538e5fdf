"""The peer connection's two tracks, on one clock.

The sound track is the clock: it sends 20 ms of sound every 20 ms of wall time (speech
while an utterance plays, silence otherwise), and its sample count is the session's media
time. A frame of an utterance is due at the media time its sound is sent; the picture
track sends each frame when it is due, with that time as its timestamp, so the browser
plays both in sync. When rendering falls behind, late frames are dropped (the newest due
frame is sent); sound is never dropped or delayed, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Optional

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

SAMPLE_RATE = 16000
BLOCK = SAMPLE_RATE // 50  # 20 ms of sound per packet
VIDEO_CLOCK = 90000  # RTP's clock rate for video
POLL = 0.004  # seconds between looks for a due frame


class MediaClock:
    """Media time in seconds since the connection's tracks started, kept by the sound."""

    def __init__(self):
        self.start: Optional[float] = None
        self.samples_sent = 0

    def begin(self) -> None:
        if self.start is None:
            self.start = time.monotonic()

    def now(self) -> float:
        self.begin()
        return time.monotonic() - self.start

    def next_block_sample(self, lead: float) -> int:
        """The first sample of the first sound block that goes out at least ``lead`` seconds from now."""
        target = max(self.samples_sent, int((self.now() + lead) * SAMPLE_RATE))
        return -(-target // BLOCK) * BLOCK


class SpeechTrack(MediaStreamTrack):
    """The sound: ``source.sound_block(first_sample, n)`` gives the speech due at those media
    samples (None for silence)."""

    kind = "audio"

    def __init__(self, clock: MediaClock, source):
        super().__init__()
        self.clock, self.source = clock, source

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        clock = self.clock
        clock.begin()
        first = clock.samples_sent
        wait = clock.start + first / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        block = self.source.sound_block(first, BLOCK)
        pcm = np.zeros(BLOCK, np.int16)
        if block is not None:
            pcm[: block.shape[0]] = np.clip(np.round(block * 32767.0), -32768, 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        clock.samples_sent = first + BLOCK
        return frame


class FrameTrack(MediaStreamTrack):
    """The picture: ``source.due_frame(now)`` gives (image, media time) of the newest frame
    due by ``now`` that has not been sent, or None; polled until there is one."""

    kind = "video"

    def __init__(self, clock: MediaClock, source):
        super().__init__()
        self.clock, self.source = clock, source
        self._last_pts = -1

    async def recv(self) -> VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            due = self.source.due_frame(self.clock.now())
            if due is not None:
                break
            await asyncio.sleep(POLL)
        image, at = due
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = max(self._last_pts + 1, int(round(at * VIDEO_CLOCK)))  # timestamps only go forward
        self._last_pts = frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame
