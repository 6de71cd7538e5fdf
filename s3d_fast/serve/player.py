"""One session's playback: renders an utterance on its own thread while the tracks of
:mod:`s3d_fast.serve.media` pull its sound and its due frames.

The sound of an utterance starts (on the media clock) once its first frame is rendered,
so "play" never shows a still face under moving sound. Rendering stays at most
``AHEAD`` seconds ahead of the sound, so a camera change reaches a frame within that
time; when it falls behind, the frames already late are skipped, not rendered.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from .camera import Camera
from .media import SAMPLE_RATE, MediaClock
from .portraits import rest_frame

FPS = 25
AHEAD = 0.12  # how far rendering runs ahead of the sound, seconds
LEAD = 0.04  # the first frame's sound starts this long after it is rendered (the next sound blocks)
LIVE_LEAD = 0.08  # the same for live speech, whose sound arrives in packets of uneven timing
RESEND = 0.5  # seconds between repeats of the still picture while idle (a late or lossy viewer gets it)
CHUNK = SAMPLE_RATE // FPS  # speech handed to the renderer at a time: one frame's


@dataclass
class Rendered:
    index: int
    image: np.ndarray
    render_ms: float
    camera: Camera


class LiveSpeech:
    """Speech that arrives while it is rendered (the microphone): ``push`` 16 kHz samples from
    one thread, ``end()`` when it stops; ``chunks()`` gives them to the renderer as they come.
    Holds at most ``capacity`` samples (the speech limit); more is dropped."""

    def __init__(self, capacity: int):
        self._buffer = np.zeros(capacity, np.float32)
        self.n = 0
        self.ended = False
        self._queue: queue.Queue = queue.Queue()

    @property
    def samples(self) -> np.ndarray:
        return self._buffer[: self.n]

    def push(self, samples: np.ndarray) -> None:
        if self.ended:
            return
        take = min(samples.shape[0], self._buffer.shape[0] - self.n)
        self._buffer[self.n : self.n + take] = samples[:take]
        self.n += take
        if take:
            self._queue.put(self._buffer[self.n - take : self.n])

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put(None)

    def chunks(self):
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            yield chunk


@dataclass
class Utterance:
    identity: object
    speech: Union[np.ndarray, LiveSpeech]
    started: float = field(default_factory=time.perf_counter)  # when "play" came
    start_sample: Optional[int] = None  # media sample its sound starts at (its first frame rendered)
    frames: collections.deque = field(default_factory=collections.deque)
    cameras: dict = field(default_factory=dict)  # frame index -> Camera it was rendered with
    rendered_all: bool = False
    cancelled: bool = False
    error: Optional[str] = None
    sent: int = 0
    dropped: int = 0
    skipped: int = 0
    first_frame_ms: Optional[float] = None

    @property
    def live(self) -> bool:
        return isinstance(self.speech, LiveSpeech)

    @property
    def samples(self) -> np.ndarray:
        return self.speech.samples if self.live else self.speech

    def due(self, index: int) -> float:
        return self.start_sample / SAMPLE_RATE + index / FPS

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.samples.shape[0]


class Player:
    def __init__(self, clock: MediaClock, emit: Callable[[dict], None]):
        self.clock, self.emit = clock, emit  # emit: called on the event loop's thread only
        self.identity = None
        self.camera = Camera()
        self.utterance: Optional[Utterance] = None
        self.last: Optional[Utterance] = None  # the latest utterance (its speech and cameras), for the mp4
        self._still: Optional[Rendered] = None  # a new still picture to send
        self._idle: Optional[Rendered] = None  # the still picture shown, and when it was last sent
        self._idle_sent = 0.0
        self._still_wanted = False
        self._still_lock = threading.Lock()
        self._error: Optional[str] = None  # a failed still render, for the page
        self.echo = False  # live speech (the user's own voice) is sent back only when asked
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.closed = False

    # --------------------------------------------------------------- controls
    def set_portrait(self, identity, rest: np.ndarray) -> None:
        self.stop()
        self.identity = identity
        self.camera = Camera()
        self._still = Rendered(-1, rest, 0.0, self.camera)

    def set_camera(self, camera: Camera) -> None:
        self.camera = camera
        if self.utterance is None and self.identity is not None:
            self._want_still()

    def play(self, speech: Union[np.ndarray, LiveSpeech]) -> Utterance:
        self.stop()
        utt = self.utterance = self.last = Utterance(self.identity, speech)
        self._worker.submit(self._render, utt)
        return utt

    def play_live(self, max_seconds: float) -> LiveSpeech:
        """Start an utterance of speech still arriving; its frames follow it as it comes."""
        live = LiveSpeech(int(max_seconds * SAMPLE_RATE))
        if self.identity is None:  # no portrait yet: the voice is heard by no one
            live.end()
            return live
        self.play(live)
        return live

    def stop(self) -> None:
        utt, self.utterance = self.utterance, None
        if utt is not None:
            utt.cancelled = True
            if utt.live:
                utt.speech.end()  # wakes the render thread waiting for more
            if self.identity is not None and not self.closed:
                self._want_still()

    def close(self) -> None:
        self.closed = True
        self.stop()
        self._worker.shutdown(wait=False, cancel_futures=True)

    # --------------------------------------------------------------- the render thread
    def _render(self, utt: Utterance) -> None:
        try:
            self._render_frames(utt)
        except Exception as exc:  # reported on the page; the session goes on
            utt.error = f"rendering failed: {type(exc).__name__}: {exc}"
        finally:
            utt.rendered_all = True

    def _render_frames(self, utt: Utterance) -> None:
        identity = utt.identity
        if utt.live:
            chunks, lead = utt.speech.chunks(), LIVE_LEAD
        else:
            samples, lead = utt.speech, LEAD
            chunks = (samples[i : i + CHUNK] for i in range(0, samples.shape[0], CHUNK))

        def pose(index: int) -> np.ndarray:
            camera = utt.cameras[index] = self.camera
            return camera.pose(identity.source.c2w)

        frames = identity.stream(chunks, SAMPLE_RATE, fps=FPS, pose=pose, batch=1)
        spent, last = 0.0, -1
        for frame in frames:
            if utt.cancelled or self.closed:
                return
            render_ms = 1000.0 * (frames.stats.render_seconds - spent)
            spent = frames.stats.render_seconds
            if utt.start_sample is None:
                utt.start_sample = self.clock.next_block_sample(lead)
                utt.first_frame_ms = 1000.0 * (time.perf_counter() - utt.started)
            utt.frames.append(Rendered(frame.index, frame.image, render_ms, utt.cameras[frame.index]))
            utt.skipped += frame.index - last - 1
            last = frame.index
            playing = math.floor((self.clock.now() - utt.due(0)) * FPS)  # the frame the sound is at
            if playing > frame.index + 1:  # behind: skip what would be late anyway
                frames.skip_to(playing + 1)
            while not utt.cancelled and utt.due(frame.index) - self.clock.now() > AHEAD:
                time.sleep(0.004)
        utt.skipped += frames.n_frames - last - 1  # skipped at the end

    def _want_still(self) -> None:
        with self._still_lock:
            if self._still_wanted:
                return
            self._still_wanted = True
        self._worker.submit(self._render_still)

    def _render_still(self) -> None:
        with self._still_lock:
            self._still_wanted = False
        identity, camera = self.identity, self.camera
        if identity is None or self.utterance is not None or self.closed:
            return
        try:
            image = rest_frame(identity, camera.pose(identity.source.c2w))
        except Exception as exc:  # shown on the page by due_frame
            self._error = f"rendering the still view failed: {type(exc).__name__}: {exc}"
            return
        self._still = Rendered(-1, image, 0.0, camera)

    # --------------------------------------------------------------- the tracks (event loop thread)
    def sound_block(self, first: int, n: int) -> Optional[np.ndarray]:
        utt = self.utterance
        if utt is None or utt.start_sample is None or (utt.live and not self.echo):
            return None
        offset = first - utt.start_sample
        if 0 <= offset < utt.samples.shape[0]:
            return utt.samples[offset : offset + n]
        return None

    def due_frame(self, now: float):
        utt = self.utterance
        if utt is not None:
            return self._due_utterance_frame(utt, now)
        if self._error:
            message, self._error = self._error, None
            self.emit({"type": "error", "message": message})
        still, self._still = self._still, None
        if still is not None:
            self._idle, self._idle_sent = still, now
            self._announce(still, None)
            return still.image, now
        if self._idle is not None and now - self._idle_sent >= RESEND:
            self._idle_sent = now
            return self._idle.image, now
        return None

    def _due_utterance_frame(self, utt: Utterance, now: float):
        if utt.error:
            self.utterance = None
            self._want_still()  # silence again, from the camera of now
            self.emit({"type": "error", "message": utt.error})
            return None
        if utt.start_sample is None:
            return None
        pick = None
        while utt.frames and utt.due(utt.frames[0].index) <= now:
            if pick is not None:
                utt.dropped += 1
            pick = utt.frames.popleft()
        if pick is not None:
            utt.sent += 1
            self._announce(pick, utt)
            return pick.image, utt.due(pick.index)
        if utt.rendered_all and not utt.frames and now * SAMPLE_RATE >= utt.end_sample:
            self.utterance = None
            self._want_still()  # silence again, from the camera of now
            self.emit(
                {
                    "type": "ended",
                    "sent": utt.sent,
                    "dropped": utt.dropped + utt.skipped,
                    "firstFrameMs": utt.first_frame_ms,
                }
            )
        return None

    def _announce(self, frame: Rendered, utt: Optional[Utterance]) -> None:
        self.emit(
            {
                "type": "frame",
                "index": frame.index,
                "renderMs": round(frame.render_ms, 2),
                "camera": frame.camera.describe(),
                "dropped": 0 if utt is None else utt.dropped + utt.skipped,
            }
        )
