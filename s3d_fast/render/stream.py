"""Rendering speech while it arrives: ``identity.stream(chunks)`` yields frames with their
presentation times, each as soon as the speech it needs has come in.

The pipeline per frame: samples -> 16 kHz mono -> log-mel -> the frame's mel window
(:mod:`s3d_fast.data.audio_stream`) -> its audio tokens (:class:`TokenStream`) -> a batch of
frames rendered from the baked state. Nothing of it grows with the speech's length.

Look-ahead: frame ``i`` (time ``i / fps``) is rendered once the speech reaches
``WINDOW_LOOKAHEAD`` samples (at most 117.5 ms) past the window of frame ``i + c`` where
``c`` is the model's ``audio_context`` (2 frames for the bundled checkpoint: the audio
encoder's temporal convolution reads that many frames either side), that is at most
117.5 ms + c / fps past the frame's own time (197.5 ms at 25 fps), plus a batch's worth of
frames when ``batch`` > 1 and the resampler's delay for input not at 16 kHz.

The occupancy grid: :meth:`Identity.render` fits it to the whole utterance before the first
frame (``fit_to_audio``). A stream cannot wait for the whole utterance, so by default
(``grid="reference"``) it renders with the grid fitted in the same way, once per identity, to
a reference utterance (the bundled demo sentence; :func:`reference_grid`, 2-3 s on the first
stream of an identity). Its frames differ from ``render``'s by the cells the two fits keep
differently: on the bundled checkpoint, 0.4 % of pixels by 1 level or more, 0.004 % by more
than 8 (docs/streaming.md). ``grid="baked"`` is the grid of the bake, which keeps every cell
any speech can reach, but also shows what fitting removes, and marches about 4 times slower.
When the whole speech is at hand but should not be held in memory (``s3d-fast render``),
:func:`fit_grid` reads it once as a stream to fit the grid exactly as ``render`` does, and the
stream given that grid renders ``render``'s frames (to float rounding of the log-mel).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import soundfile as sf
import torch

from ..data import audio as audio_mod
from ..data import video
from ..data.audio_stream import WINDOW_LOOKAHEAD, PreparedStream, SpeechFeatureStream
from ..data.errors import AudioFileError, VideoError
from . import cameras
from .assets import DEMO_SPEECH
from .errors import RenderError
from .limits import check_batch, check_size
from .speech import check_fps, frame_count
from .stats import RenderStats, synchronize

Pose = Union[np.ndarray, Callable[[int], np.ndarray]]
READ_BLOCK = 1 << 14  # source frames decoded at a time (about 1 s at 16 kHz)


@dataclass
class StreamFrame:
    """One rendered frame: ``index`` from 0, ``time`` its presentation time in seconds
    (``index / fps``), ``image`` uint8 (H, W, 3)."""

    index: int
    time: float
    image: np.ndarray


@dataclass
class FittedGrid:
    """An identity's occupancy grid fitted to one utterance of ``n_frames`` frames
    (:func:`fit_grid`), or to a reference for any speech (``n_frames`` None)."""

    identity: object
    baked: object
    n_frames: Optional[int]
    seconds: float


class TokenStream:
    """Audio tokens of each frame as soon as the frames its context reads have arrived.

    The audio encoder gives frame ``i`` context from frames ``i - c`` to ``i + c``
    (``audio_context``), repeating the first and last frame beyond the ends. ``push(windows)``
    returns the tokens of the frames whose right context is in; ``flush()`` those of the rest,
    the last frame repeated. Each call runs the encoder on the new frames and their context,
    so holds ``2 c`` windows between calls.
    """

    def __init__(self, model, device: torch.device):
        self.model, self.device = model, device
        self.context = int(getattr(model.config.model, "audio_context", 0))
        self._windows = np.zeros((0, audio_mod.N_MELS, audio_mod.MEL_STEP), np.float32)
        self._base = 0  # frame index of self._windows[0]
        self.frames = 0  # tokens given out
        self.seconds = 0.0

    def push(self, windows: np.ndarray) -> Optional[torch.Tensor]:
        if windows.shape[0]:
            self._windows = np.concatenate([self._windows, windows])
        return self._emit(self._base + self._windows.shape[0] - self.context)

    def flush(self) -> Optional[torch.Tensor]:
        return self._emit(self._base + self._windows.shape[0])

    def _emit(self, stop: int) -> Optional[torch.Tensor]:
        if stop <= self.frames:
            return None
        first = max(0, self.frames - self.context)  # the left context of the first new frame
        end = min(self._base + self._windows.shape[0], stop + self.context)
        segment = self._windows[first - self._base : end - self._base]
        start = time.perf_counter()
        with torch.inference_mode():
            tokens = self.model.audio_tokens(torch.from_numpy(segment).to(self.device))
        if tokens.shape[0] != segment.shape[0]:
            raise RenderError(f"the model made {tokens.shape[0]} audio tokens for {segment.shape[0]} frames")
        tokens = tokens[self.frames - first : stop - first]
        self.seconds += time.perf_counter() - start
        self.frames = stop
        keep = max(0, stop - self.context)
        if keep > self._base:
            self._windows = self._windows[keep - self._base :].copy()
            self._base = keep
        return tokens


def _as_pose(pose, where: str) -> Pose:
    if callable(pose):
        return pose
    return cameras.check_c2w(np.asarray(pose, np.float64)[None], where)[0]


class FrameStream:
    """Frames of an identity speaking ``chunks``, made while the chunks arrive; iterate it
    once. ``camera`` (or ``set_camera``): the camera-to-head matrix (4, 4) of the frames not
    yet rendered, or a function ``frame index -> (4, 4)``; it is read when a frame's batch is
    rendered. ``stats`` fills in as frames are made (also ``identity.stats``); after the
    last frame ``n_frames`` is the total (round(duration * fps), as :meth:`Identity.render`)."""

    def __init__(
        self,
        identity,
        chunks: Iterable,
        sample_rate: int = audio_mod.SAMPLE_RATE,
        *,
        fps: int = audio_mod.FPS,
        pose: Optional[Pose] = None,
        batch: int = 1,
        size: Optional[int] = None,
        grid: Union[str, FittedGrid] = "reference",
    ):
        self.batch = check_batch(batch)
        self.identity = identity
        self.fps = check_fps(fps)
        self.size = check_size(size)
        self._chunks = chunks
        self._features = SpeechFeatureStream(sample_rate, self.fps)
        self._tokens = TokenStream(identity.renderer.model, identity.renderer.device)
        self._camera = _as_pose(identity.source.c2w if pose is None else pose, "pose")
        if isinstance(grid, str) and grid == "reference":  # last: the first stream of an identity fits it
            grid = reference_grid(identity)
        elif isinstance(grid, str) and grid == "baked":
            grid = None
        elif not isinstance(grid, FittedGrid) or grid.identity is not identity:
            raise RenderError('grid must be "reference", "baked" or the result of this identity\'s fit_grid()')
        self.grid = grid
        self.stats = identity.stats = RenderStats()
        self.stats.setup["bake"] = identity.bake_seconds
        if grid is not None:
            self.stats.setup["fit grid to audio"] = grid.seconds
        self.n_frames = None
        self._started = False
        self._skip = 0  # frames before this index are not rendered (skip_to)
        self._stats_lock = threading.Lock()

    @property
    def lookahead_seconds(self) -> float:
        """The most a frame waits for speech past its own time (without batching)."""
        return WINDOW_LOOKAHEAD / audio_mod.SAMPLE_RATE + self._tokens.context / self.fps

    @property
    def camera(self) -> Pose:
        return self._camera

    @camera.setter
    def camera(self, pose: Pose) -> None:
        self._camera = _as_pose(pose, "camera")

    def set_camera(self, pose: Pose) -> None:
        self.camera = pose

    def skip_to(self, index: int) -> None:
        """Frames before ``index`` not yet rendered are dropped, neither rendered nor yielded:
        for a live viewer whose rendering fell behind the sound."""
        self._skip = max(self._skip, int(index))

    def __iter__(self) -> Iterator[StreamFrame]:
        return self._frames(self.batches())

    def batches(self) -> Iterator[tuple[int, torch.Tensor]]:
        """The stream as work to render elsewhere, instead of iterating it: ``(first frame
        index, audio tokens)`` of each batch as soon as its speech is in, each to give to
        :meth:`render_batch` (which may run on other threads, several batches at once)."""
        if self._started:
            raise RenderError("a frame stream is iterated once; call identity.stream() again")
        self._started = True
        return self._batches()

    def _frames(self, batches: Iterator[tuple[int, torch.Tensor]]) -> Iterator[StreamFrame]:
        for first, tokens in batches:
            yield from self.render_batch(first, tokens)

    def _batches(self) -> Iterator[tuple[int, torch.Tensor]]:
        renderer = self.identity.renderer
        model, dev = renderer.model, renderer.device
        K = np.asarray(self.identity.source.K, np.float64).copy()
        K[:2] *= model.input_resolution / float(self.identity.source.resolution)
        self._K = torch.as_tensor(K, dtype=torch.float32, device=dev)[None]
        self._baked = self.identity.baked if self.grid is None else self.grid.baked
        pending, done = [], 0
        for chunk in self._chunks:
            tokens = self._tokens.push(self._features.push(chunk))
            if tokens is not None:
                pending.append(tokens)
            while sum(t.shape[0] for t in pending) >= self.batch:
                batch, pending = _take(pending, self.batch)
                yield done, batch
                done += batch.shape[0]
        windows = self._features.flush()
        self.n_frames = self._features.n_frames
        for tokens in (self._tokens.push(windows), self._tokens.flush()):
            if tokens is not None:
                pending.append(tokens)
        self.stats.setup["audio tokens"] = self._tokens.seconds
        while pending:
            batch, pending = _take(pending, self.batch)
            yield done, batch
            done += batch.shape[0]
        if self.grid is not None and self.grid.n_frames is not None and done != self.grid.n_frames:
            raise RenderError(f"the grid was fitted to {self.grid.n_frames} frames of speech, this speech has {done}")

    def render_batch(self, first: int, tokens: torch.Tensor) -> list[StreamFrame]:
        """The frames of one batch of :meth:`batches` (those before a :meth:`skip_to` left out).
        Safe to call from several threads at once: each call's timings are added to ``stats``
        when it is done."""
        dropped = min(tokens.shape[0], max(0, self._skip - first))
        tokens, first = tokens[dropped:], first + dropped
        b = tokens.shape[0]
        if b == 0:
            return []
        camera = self._camera
        poses = [camera(first + k) for k in range(b)] if callable(camera) else [camera] * b
        poses = cameras.check_c2w(np.stack(poses), "camera")
        dev = self.identity.renderer.device
        c2w = torch.as_tensor(poses, dtype=torch.float32, device=dev)
        stats = type(self.stats)()
        frames = self.identity._render_batch(self._baked, tokens, c2w, self._K.expand(b, 3, 3), self.size, stats)
        with self._stats_lock:
            self.stats.add(stats)
        return [StreamFrame(first + k, (first + k) / self.fps, image) for k, image in enumerate(frames)]


def _take(pending: list, n: int) -> tuple[torch.Tensor, list]:
    """The first ``n`` rows of a list of token tensors (fewer if there are fewer), and the rest."""
    tokens = pending[0] if len(pending) == 1 else torch.cat(pending)
    return tokens[:n], ([tokens[n:]] if tokens.shape[0] > n else [])


def fit_grid(identity, chunks: Iterable, sample_rate: int, fps: int, n_frames: Optional[int] = None) -> FittedGrid:
    """The occupancy grid :meth:`Identity.render` would fit to this speech, from the tokens of
    the model's probe frames, read as a stream. ``n_frames`` (the speech's frame count) picks
    the probes; without it ``chunks`` is read twice (it must then be re-iterable, a list or a
    :class:`SpeechFile`). A model without a grid to fit gives its bake back."""
    fps = check_fps(fps)
    model, dev = identity.renderer.model, identity.renderer.device
    start = time.perf_counter()
    if n_frames is None and iter(chunks) is chunks:
        raise RenderError("fit_grid: give n_frames, or chunks that can be read twice (a list or a SpeechFile)")
    if not hasattr(model, "fit_to_probes"):
        return FittedGrid(identity, identity.baked, n_frames, 0.0)
    if n_frames is None:
        counted = PreparedStream(sample_rate)
        for chunk in chunks:
            counted.push(chunk)
        counted.flush()
        n_frames = frame_count(counted.samples_out, fps=fps)
    probes = model.audio_probes(int(n_frames)).tolist()
    # Only the probes' tokens are needed: each from its window and its context's alone.
    context = TokenStream(model, dev).context
    recent = collections.deque(maxlen=2 * context + 1)  # (frame index, window) of the last frames
    pending, found = collections.deque(probes), []

    def take(final: bool) -> None:
        while pending and (final or pending[0] + context <= recent[-1][0]):
            p = pending.popleft()
            segment = np.stack([w for i, w in recent if p - context <= i <= p + context])
            with torch.inference_mode():
                tokens = model.audio_tokens(torch.from_numpy(segment).to(dev))
            found.append(tokens[p - max(0, p - context)][None])

    features, index = SpeechFeatureStream(sample_rate, fps), 0
    for windows in _all_windows(features, chunks):
        for window in windows:
            recent.append((index, window))
            index += 1
            take(final=False)
    if features.n_frames != n_frames:
        raise RenderError(f"fit_grid: n_frames is {n_frames}, the speech has {features.n_frames} frames")
    take(final=True)
    with torch.inference_mode():
        baked = model.fit_to_probes(identity.baked, torch.cat(found))
    synchronize(dev)
    return FittedGrid(identity, baked, int(n_frames), time.perf_counter() - start)


def _all_windows(features: SpeechFeatureStream, chunks: Iterable) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield features.push(chunk)
    yield features.flush()


def reference_grid(identity) -> FittedGrid:
    """The grid fitted once per identity to the bundled demo sentence (cached on it): what a
    stream renders with while its own speech is not yet known."""
    cached = getattr(identity, "_reference_grid", None)
    if cached is None:
        if not os.path.isfile(DEMO_SPEECH):
            raise RenderError(
                f"the bundled demo sentence is missing ({DEMO_SPEECH}), which the reference grid is "
                'fitted to; stream with grid="baked"'
            )
        speech = SpeechFile(DEMO_SPEECH)
        fitted = fit_grid(identity, speech, speech.sample_rate, audio_mod.FPS)
        cached = identity._reference_grid = dataclasses.replace(fitted, n_frames=None)  # for any speech
    return cached


class SpeechFile:
    """A speech file read as 16 kHz mono blocks, each time it is iterated (never whole):
    anything libsndfile reads, or else the audio track of anything FFmpeg decodes (mp4,
    m4a, webm...). Errors as :func:`s3d_fast.render.api.read_speech`."""

    sample_rate = audio_mod.SAMPLE_RATE

    def __init__(self, path, block: int = READ_BLOCK):
        self.path = os.fspath(path)
        self.block = int(block)
        self._track_rate = None  # set for a container's audio track, decoded by FFmpeg
        if not os.path.isfile(self.path):
            raise AudioFileError(f"{self.path}: no such audio file")
        try:
            sf.info(self.path)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
            sound_error = AudioFileError(f"{self.path}: cannot decode audio ({exc})")
            try:
                self._track_rate = video.audio_track_rate(self.path)
            except VideoError:
                raise sound_error from None
            if self._track_rate is None:
                raise AudioFileError(f"{self.path}: the file has no audio track") from None

    def scan(self) -> int:
        """Read it all once (every error surfaces here); the number of 16 kHz samples."""
        return sum(block.shape[0] for block in self)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._track_rate is not None:
            yield from self._prepared(video.iter_audio_track(self.path), self._track_rate)
            return
        try:
            with sf.SoundFile(self.path) as f:
                rate, channels = int(f.samplerate), int(f.channels)
                if not 0 < channels <= audio_mod.MAX_CHANNELS:
                    raise AudioFileError(f"{self.path}: {channels} audio channels (at most {audio_mod.MAX_CHANNELS})")
                yield from self._prepared(f.blocks(self.block, dtype="float32", always_2d=True), rate)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
            raise AudioFileError(f"{self.path}: cannot decode audio ({exc})") from None

    def _prepared(self, blocks: Iterable[np.ndarray], rate: int) -> Iterator[np.ndarray]:
        """Source-rate (n, channels) blocks -> 16 kHz mono ones, within the length limit."""
        prepared = PreparedStream(rate, where=self.path)
        limit = audio_mod.MAX_SECONDS * rate
        try:
            for block in blocks:
                if prepared.samples_in + block.shape[0] > limit:
                    raise AudioFileError(
                        f"{self.path}: longer than {audio_mod.MAX_SECONDS // 3600} hours of audio; cut it first"
                    )
                out = prepared.push(block)
                if out.shape[0]:
                    yield out
        except VideoError as exc:
            raise AudioFileError(str(exc)) from None
        tail = prepared.flush()
        if tail.shape[0]:
            yield tail
