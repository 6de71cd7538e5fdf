"""The microphone: the page's microphone track, received over the session's peer connection,
cut into utterances by its loudness and handed to the player as live speech.

aiortc gives decoded sound frames (48 kHz stereo from Opus); :class:`PreparedStream` makes
them 16 kHz mono as any speech is, by its low-delay decimator (the voice's delay shows). A
voice starts an utterance when a 20 ms block is louder than ``THRESHOLD_DB``, with the
``PREROLL`` seconds before it (the soft start of a word, and the look-ahead the first frame's
mel window reads); it ends after ``PAUSE`` seconds below it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Optional

import numpy as np
from aiortc.mediastreams import MediaStreamError

from ..data.audio_stream import PreparedStream
from .media import BLOCK, SAMPLE_RATE

log = logging.getLogger("s3d_fast.serve")

THRESHOLD_DB = -42.0  # a block's RMS level, dB below full scale, that counts as voice
PAUSE = 0.8  # seconds below the threshold that end an utterance
PREROLL = 0.2  # seconds of sound before the onset that start the utterance


def level_db(block: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) if block.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


class VoiceGate:
    """16 kHz mono samples in, in any chunks; out: ``("start", preroll + block)``,
    ``("more", block)`` and ``("end", None)`` events, judged per 20 ms block."""

    def __init__(self, max_seconds: float, threshold_db: float = THRESHOLD_DB, pause: float = PAUSE):
        self.threshold_db, self.pause_blocks = threshold_db, int(round(pause * SAMPLE_RATE / BLOCK))
        self.max_blocks = int(max_seconds * SAMPLE_RATE / BLOCK)
        self._recent = collections.deque(maxlen=int(round(PREROLL * SAMPLE_RATE / BLOCK)))
        self._pending = np.zeros(0, np.float32)
        self.speaking = False
        self._quiet = self._blocks = 0

    def push(self, samples: np.ndarray) -> list:
        self._pending = np.concatenate([self._pending, samples])
        events = []
        while self._pending.shape[0] >= BLOCK:
            block, self._pending = self._pending[:BLOCK], self._pending[BLOCK:]
            events.extend(self._block(block))
        return events

    def end(self) -> list:
        """The utterance under way ends now (the microphone was turned off)."""
        if not self.speaking:
            return []
        self.speaking = False
        return [("end", None)]

    def _block(self, block: np.ndarray) -> list:
        loud = level_db(block) > self.threshold_db
        if not self.speaking:
            if not loud:
                self._recent.append(block)
                return []
            start = np.concatenate([*self._recent, block])
            self.speaking, self._quiet, self._blocks = True, 0, len(self._recent) + 1  # the limit counts the preroll
            self._recent.clear()
            return [("start", start)]
        self._quiet = 0 if loud else self._quiet + 1
        self._blocks += 1
        if self._quiet >= self.pause_blocks or self._blocks >= self.max_blocks:
            self.speaking = False
            return [("more", block), ("end", None)]
        return [("more", block)]


class Microphone:
    """One session's microphone: ``listen(track)`` reads it (on the event loop) while the
    session lives; ``enable(on, echo)`` from the page's messages. Off, its sound is read and
    dropped; the voice is played back to the user only with ``echo``."""

    def __init__(self, player, max_seconds: float):
        self.player, self.max_seconds = player, max_seconds
        self.on = False
        self.gate = VoiceGate(max_seconds)
        self._live = None  # the LiveSpeech of the utterance under way
        self._task: Optional[asyncio.Task] = None
        self._prepared: Optional[PreparedStream] = None
        self._format = None

    def enable(self, on: bool, echo: bool) -> None:
        self.player.echo = bool(echo)
        if self.on and not on:
            self._handle(self.gate.end())
        self.on = bool(on)

    def listen(self, track) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._read(track))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._handle(self.gate.end())

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self._handle(self.gate.end())
                return
            samples = self._samples16k(frame)
            if self.on and samples.shape[0]:
                self._handle(self.gate.push(samples))

    def _samples16k(self, frame) -> np.ndarray:
        channels = len(frame.layout.channels)
        if self._format != (frame.sample_rate, channels):  # a new stream (or a first one)
            self._format = (frame.sample_rate, channels)
            self._prepared = PreparedStream(frame.sample_rate, where="the microphone", low_delay=True)
        pcm = frame.to_ndarray()
        if frame.format.is_planar:
            pcm = pcm.T  # (channels, n) -> (n, channels)
        else:
            pcm = pcm.reshape(-1, channels)  # interleaved
        return self._prepared.push(pcm)

    def _handle(self, events: list) -> None:
        for kind, block in events:
            if kind == "start":
                self._live = self.player.play_live(self.max_seconds)
                self._live.push(block)
            elif self._live is not None and kind == "more":
                self._live.push(block)
            elif self._live is not None and kind == "end":
                self._live.end()
                self._live = None
