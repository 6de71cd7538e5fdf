"""Video I/O with PyAV: decode frames (and the speech track), write H.264 mp4 + AAC.

Frames are uint8 (H, W, 3) RGB (docs/design.md section 5a). Writing goes to a temporary name in the
target folder and is renamed into place only when the container is closed, so a
crash or Ctrl-C never leaves a truncated mp4 under the final name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import av
import numpy as np

from ..atomic import atomic_path
from . import audio as audio_mod
from .errors import VideoError


@dataclass
class Video:
    """A decoded video: ``frames`` (T, H, W, 3) uint8 RGB; ``audio`` 16 kHz mono or None."""

    frames: np.ndarray
    fps: float
    audio: Optional[np.ndarray]
    sample_rate: Optional[int]


def _open(path):

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such video file")
    try:
        return av.open(path)
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"{path}: cannot open video ({exc})") from None


MAX_FRAME_PIXELS = 8192 * 8192  # as for images
MAX_VIDEO_BYTES = 4 << 30  # decoded frames read_video holds at once (about 6 min of 1080p)


def iter_frames(path) -> Iterator[np.ndarray]:
    """Decode the first video stream frame by frame as uint8 RGB arrays."""

    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{os.fspath(path)}: the file has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_FRAME_PIXELS:  # said by the header: refused before a frame is decoded
            raise VideoError(f"{os.fspath(path)}: {width}x{height} video frames; at most {MAX_FRAME_PIXELS} pixels")
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if frame.width * frame.height > MAX_FRAME_PIXELS:  # a stream can change size midway
                    raise VideoError(f"{os.fspath(path)}: a {frame.width}x{frame.height} frame; too large")
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise VideoError(f"{os.fspath(path)}: corrupt video data ({exc})") from None


def video_fps(path) -> float:
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{os.fspath(path)}: the file has no video stream")
        rate = container.streams.video[0].average_rate or container.streams.video[0].base_rate
        return float(rate) if rate else 25.0


def audio_track_rate(path) -> Optional[int]:
    """The first audio stream's sample rate, or None if the file has no audio stream."""
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        return int(stream.rate or stream.codec_context.sample_rate)


def iter_audio_track(path) -> Iterator[np.ndarray]:
    """The first audio stream decoded as it is read: (n, channels) blocks as the decoder
    gives them (integer PCM unscaled), ending where the stream's duration says."""
    with _open(path) as container:
        yield from _audio_blocks(container, path)


def read_audio_track(path):
    """The first audio stream as (16 kHz mono float32 samples, 16000), or None if absent."""
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        chunks = list(_audio_blocks(container, path))
    if not chunks:
        return None
    prepared = audio_mod.prepare(np.concatenate(chunks, 0), rate, where=os.fspath(path))  # scales integer PCM
    return prepared.samples, prepared.sample_rate


def _audio_blocks(container, path) -> Iterator[np.ndarray]:
    stream = container.streams.audio[0]
    rate = stream.rate or stream.codec_context.sample_rate
    # AAC pads its last frame; the stream duration says where the speech ends.
    left = int(round(float(stream.duration * stream.time_base) * rate)) if stream.duration else None
    try:
        for frame in container.decode(stream):
            # Planar -> (channels, n); packed formats -> (1, n*channels).
            arr = frame.to_ndarray()
            block = arr.T if frame.format.is_planar else arr.reshape(-1, len(frame.layout.channels))
            if left is not None:
                block, left = block[:left], max(0, left - block.shape[0])
            if block.shape[0]:
                yield block
            if left == 0:
                return
    except av.FFmpegError as exc:
        raise VideoError(f"{os.fspath(path)}: corrupt audio data ({exc})") from None


def read_video(path, with_audio: bool = True) -> Video:
    """Decode a whole video into memory (frames plus, if present, the speech track)."""
    frames, size = [], 0
    for frame in iter_frames(path):
        size += frame.nbytes
        if size > MAX_VIDEO_BYTES:
            raise VideoError(
                f"{os.fspath(path)}: more than {MAX_VIDEO_BYTES >> 30} GB of decoded frames; cut or downscale it first"
            )
        frames.append(frame)
    if not frames:
        raise VideoError(f"{os.fspath(path)}: the video has no frames")
    track = read_audio_track(path) if with_audio else None
    return Video(
        frames=np.stack(frames),
        fps=video_fps(path),
        audio=None if track is None else track[0],
        sample_rate=None if track is None else track[1],
    )


def write_video(
    path,
    frames: Iterable[np.ndarray],
    fps: int = 25,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 16000,
    crf: int = 18,
) -> None:
    """Write uint8 RGB frames as H.264 (yuv420p) mp4, with ``audio`` muxed in as AAC.

    ``frames`` may be an array (T, H, W, 3) or any iterable of (H, W, 3) frames, so long
    renders stream to disk. H and W must be even (a 4:2:0 constraint of H.264).
    """
    with VideoWriter(path, fps, sample_rate if audio is not None else None, crf) as writer:
        for frame in frames:
            writer.add_frame(frame)
        if audio is not None:
            writer.add_audio(audio)


class VideoWriter:
    """An mp4 written as it is made: ``add_frame`` uint8 (H, W, 3) RGB frames (H.264,
    yuv420p) and, when ``sample_rate`` is given, ``add_audio`` mono samples (AAC) in any
    blocks and any order between them; the speech is encoded as it comes, so neither is
    held whole. Used as a context manager: the file appears under ``path`` only when the
    block ends without an exception (``s3d_fast.atomic``)."""

    def __init__(self, path, fps: int = 25, sample_rate: Optional[int] = None, crf: int = 18):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise VideoError(f"{self.path}: the folder {folder} does not exist")
        self.fps, self.sample_rate, self.crf = int(fps), sample_rate, int(crf)
        self.frames = 0
        self._atomic = None
        self._container = self._video = self._audio = None
        self._pending = np.zeros(0, np.float32)  # speech not yet encoded (a partial AAC frame, or before frame 0)
        self._audio_pts = 0

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            try:
                self._container = av.open(tmp, mode="w", format="mp4")
                if self.sample_rate is not None:
                    self._audio = self._container.add_stream("aac", rate=int(self.sample_rate))
                    self._audio.layout = "mono"
            except av.FFmpegError as exc:
                raise VideoError(f"{self.path}: cannot write video ({exc})") from None
        except BaseException:
            self._abandon(*sys.exc_info())
            raise
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None:
            self._abandon(kind, exc, tb)
            return False
        try:
            self._finish()
            try:
                self._container.close()
            except av.FFmpegError as error:
                raise VideoError(f"{self.path}: cannot write video ({error})") from None
        except BaseException:
            self._abandon(*sys.exc_info())
            raise
        self._atomic.__exit__(None, None, None)
        return False

    def _abandon(self, kind, exc, tb) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass  # the file is being discarded
        self._atomic.__exit__(kind, exc, tb)

    def add_frame(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VideoError(f"frames must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        try:
            if self._video is None:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    raise VideoError(f"H.264 needs even frame sizes, got {w}x{h}")
                self._video = self._container.add_stream("libx264", rate=Fraction(self.fps, 1))
                self._video.width, self._video.height, self._video.pix_fmt = w, h, "yuv420p"
                self._video.options = {"crf": str(self.crf), "preset": "veryfast"}
            elif frame.shape[:2] != (self._video.height, self._video.width):
                raise VideoError(
                    f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"expected {self._video.width}x{self._video.height}"
                )
            for packet in self._video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._container.mux(packet)
            self.frames += 1
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: cannot write video ({exc})") from None
        if self._pending.size:
            self.add_audio(np.zeros(0, np.float32))

    def add_audio(self, samples: np.ndarray) -> None:
        if self._audio is None:
            raise VideoError("add_audio: this writer was opened without a sample_rate")
        block = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
        self._pending = np.concatenate([self._pending, block]) if self._pending.size else block
        if self._video is not None:  # the container's header waits for the video stream
            self._encode_audio(last=False)

    def _encode_audio(self, last: bool) -> None:
        # The AAC encoder takes fixed-size frames; the codec context says how many.
        chunk = self._audio.codec_context.frame_size or 1024
        whole = self._pending.shape[0] if last else self._pending.shape[0] // chunk * chunk
        try:
            for start in range(0, whole, chunk):
                block = self._pending[start : min(start + chunk, whole)]
                aframe = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
                aframe.sample_rate = int(self.sample_rate)
                aframe.pts = self._audio_pts
                self._audio_pts += block.shape[0]
                for packet in self._audio.encode(aframe):
                    self._container.mux(packet)
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: cannot write video ({exc})") from None
        self._pending = self._pending[whole:].copy()

    def _finish(self) -> None:
        if self._video is None:
            raise VideoError("no frames to write")
        try:
            self._container.mux(self._video.encode())
            if self._audio is not None:
                self._encode_audio(last=True)
                self._container.mux(self._audio.encode())
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: cannot write video ({exc})") from None
