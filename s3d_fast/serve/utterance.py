"""What one utterance is while it plays: its speech (a file's samples, or live speech that
arrives while it is rendered), the frames rendered for it and its figures."""

from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from .camera import Camera
from .media import SAMPLE_RATE

FPS = 25


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
        self.origin: Optional[float] = None  # time.monotonic() sample 0 would have come at, had all come live
        self._queue: queue.Queue = queue.Queue()

    @property
    def samples(self) -> np.ndarray:
        return self._buffer[: self.n]

    def push(self, samples: np.ndarray) -> None:
        if self.ended:
            return
        if self.origin is None:  # the first push holds the sound before the voice, just in
            self.origin = time.monotonic() - samples.shape[0] / SAMPLE_RATE
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
    lookahead: float = 0.0  # the most a frame waits for speech past its own time
    lock: threading.Lock = field(default_factory=threading.Lock)
    rendering: collections.deque = field(default_factory=collections.deque)  # frame indices, in order
    finished: dict = field(default_factory=dict)  # index -> Rendered (None: failed) not yet in order

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
