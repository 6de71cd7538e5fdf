"""One session's playback: renders an utterance on its own thread while the tracks of
:mod:`s3d_fast.serve.media` pull its sound and its due frames.

The sound of an utterance starts (on the media clock) once its first frame is rendered,
so "play" never shows a still face under moving sound. Frames are rendered on
``RENDER_WORKERS`` threads at once (:mod:`.threads`) and handed to the picture track in
order (the first ``FIRST_ALONE``, due soonest, one at a time on all cores). Rendering
stays at most ``AHEAD`` seconds ahead of the sound, so a camera change reaches a frame
within that time; when it falls behind, a frame that would be ready more than ``LATE``
after its time (by the recent frames' render times) is skipped, not rendered: a frame
shown late puts the picture behind its sound.

Live speech (the microphone) is scheduled from when its samples arrived: a frame is due
``LIVE_MARGIN`` after the speech it needs (its look-ahead) is in and it can be rendered.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Optional, Union

import numpy as np

from .camera import Camera
from .media import BLOCK, SAMPLE_RATE, MediaClock
from .portraits import rest_frame
from .threads import RENDER_WORKERS, render_pool, threads_of_this_thread
from .utterance import FPS, LiveSpeech, Rendered, Utterance

AHEAD = 0.12  # how far rendering runs ahead of the sound, beyond a frame's render time, seconds
LEAD = 0.04  # the first frame's sound starts this long after it is rendered (the next sound blocks)
LIVE_MARGIN = 0.04  # live speech: slack for its packets' uneven timing and a slower render
LATE = 0.5 / FPS  # a frame expected later than this past its time is skipped
FRAMES_PER_JOB = 1  # frames a render thread renders at once
FIRST_ALONE = 2  # an utterance's first frames, rendered one at a time on all cores: due soonest
RESEND = 0.5  # seconds between repeats of the still picture while idle (a late or lossy viewer gets it)
CHUNK = 4 * SAMPLE_RATE // FPS  # speech (a file's) handed to the renderer at a time: its features are made together


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
        self.render_seconds: Optional[float] = None  # a frame's recent render time on a render thread (moving average)
        self._first_guess: Optional[float] = None  # the same, guessed from the latest frame rendered alone
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
            # Between frames this thread computes the speech's features: operations too small
            # to share, whose torch threads would spin on the cores the render threads need.
            # A frame it renders alone has all of them again.
            with threads_of_this_thread(1) as cores:
                self._render_frames(utt, cores)
        except Exception as exc:  # reported on the page; the session goes on
            utt.error = f"rendering failed: {type(exc).__name__}: {exc}"
        finally:
            utt.rendered_all = True

    def _render_frames(self, utt: Utterance, cores: int) -> None:
        identity = utt.identity
        if utt.live:
            chunks = utt.speech.chunks()
        else:
            samples = utt.speech
            chunks = (samples[i : i + CHUNK] for i in range(0, samples.shape[0], CHUNK))

        def pose(index: int) -> np.ndarray:
            camera = utt.cameras[index] = self.camera
            return camera.pose(identity.source.c2w)

        frames = identity.stream(chunks, SAMPLE_RATE, fps=FPS, pose=pose, batch=FRAMES_PER_JOB)
        utt.lookahead = frames.lookahead_seconds
        free = threading.Semaphore(RENDER_WORKERS)
        under_way: set = set()
        skipped_last = False
        try:
            for first, tokens in frames.batches():
                free.acquire()  # a render thread is free
                try:
                    if utt.cancelled or self.closed or utt.error:  # (a frame failed: the page is told)
                        free.release()
                        return
                    alone = first < FIRST_ALONE and not under_way  # sooner than any on a render thread
                    if not alone and self._skip(utt, first, skipped_last):
                        utt.skipped += tokens.shape[0]
                        skipped_last = True
                        free.release()
                        continue
                    skipped_last = False
                    with utt.lock:
                        utt.rendering.extend(range(first, first + tokens.shape[0]))
                    if alone:
                        with threads_of_this_thread(cores):
                            self._render_batch(utt, frames, first, tokens, free, time.perf_counter(), alone=True)
                        continue
                    job = render_pool().submit(
                        self._render_batch, utt, frames, first, tokens, free, time.perf_counter()
                    )
                except BaseException:
                    free.release()
                    raise
                under_way.add(job)
                job.add_done_callback(under_way.discard)
        finally:
            wait(list(under_way))  # the frames under way are in before the utterance ends

    def _skip(self, utt: Utterance, index: int, skipped_last: bool) -> bool:
        """Paces rendering to ``AHEAD`` of the sound (a frame starts at most that long before it
        must), then says whether frame ``index`` would be ready too late to show. Only by a
        time measured on a render thread: guessed from frames rendered alone, it is too rough
        to give up a frame for (the first on a render thread then rendered a little late, in
        time). Live speech skips two in a row only where the next frame's speech is in: else
        there is nothing to render instead. Once behind its voice (a slow machine), it is, and
        skipping catches up; never skipping twice would fall further behind with every frame,
        and an utterance would end long after its voice did."""
        if utt.start_sample is None:
            return False
        render = self.render_estimate()
        while not utt.cancelled and utt.due(index) - self.clock.now() > AHEAD + render:
            time.sleep(0.004)
        if self.render_seconds is None or (utt.live and skipped_last and not self._speech_in(utt, index + 1)):
            return False
        return self.clock.now() + self.render_seconds > utt.due(index) + LATE

    @staticmethod
    def _speech_in(utt: Utterance, index: int) -> bool:
        """Whether the speech frame ``index`` reads (through its look-ahead) has all arrived."""
        speech = utt.speech
        return speech.ended or speech.n >= ((index + 1) / FPS + utt.lookahead) * SAMPLE_RATE

    def _render_batch(
        self, utt: Utterance, frames, first: int, tokens, free: threading.Semaphore, since: float, alone: bool = False
    ) -> None:
        """Renders a batch (on a render thread; ``alone``: on the calling thread, with torch's
        threads) and hands the frames now in order to the picture track. Its time counts from
        its submission (``since``): a wait for a render thread (other sessions') delays it too."""
        try:
            rendered = frames.render_batch(first, tokens)
            seconds = (time.perf_counter() - since) / max(1, len(rendered))
            average = self.render_seconds
            if not alone:
                self.render_seconds = seconds if average is None else 0.8 * average + 0.2 * seconds
            else:  # on all cores; a render thread has one of them (the latest frame: the first is cold)
                self._first_guess = seconds * RENDER_WORKERS
            done = {f.index: Rendered(f.index, f.image, 1000.0 * seconds, utt.cameras[f.index]) for f in rendered}
        except Exception as exc:  # reported on the page; the session goes on
            utt.error = f"rendering failed: {type(exc).__name__}: {exc}"
            done = {}
        finally:
            free.release()
        with utt.lock:
            for index in range(first, first + tokens.shape[0]):
                utt.finished[index] = done.get(index)
            while utt.rendering and utt.rendering[0] in utt.finished:
                frame = utt.finished.pop(utt.rendering.popleft())
                if frame is not None:
                    self._deliver(utt, frame)

    def render_estimate(self) -> float:
        """Seconds a frame takes on a render thread: measured there, else guessed, else 0."""
        return self.render_seconds if self.render_seconds is not None else (self._first_guess or 0.0)

    def _deliver(self, utt: Utterance, frame: Rendered) -> None:
        """The next rendered frame, in order, to the picture track (the first sets the sound's start)."""
        if utt.start_sample is None:
            utt.start_sample = self.clock.next_block_sample(self._lead(utt))
            utt.first_frame_ms = 1000.0 * (time.perf_counter() - utt.started)
        utt.frames.append(frame)

    def _lead(self, utt: Utterance) -> float:
        """Seconds from now to the utterance's start on the media clock (its first frame is in).
        Live: when frame ``i``'s speech and look-ahead will be in and it rendered, plus a margin,
        is ``i / FPS`` past it; the sound of the voice that came before is already in."""
        if not utt.live or utt.speech.origin is None:
            return LEAD
        ready = utt.speech.origin - time.monotonic() + utt.lookahead + self.render_estimate()
        return max(BLOCK / SAMPLE_RATE, ready + LIVE_MARGIN)

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
