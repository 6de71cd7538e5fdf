"""Speech for a render: a sound file, samples or mel windows in, one 0.2 s log-mel window
per video frame out (:class:`Speech`), at any frame rate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..data import audio as audio_mod
from ..data import video
from ..data.errors import AudioFileError, VideoError
from .errors import RenderError

MIN_FPS, MAX_FPS = 1, 60
MEL_PER_SECOND = audio_mod.SAMPLE_RATE // audio_mod.HOP  # 80


def frame_count(n_samples: int, sample_rate: int = audio_mod.SAMPLE_RATE, fps: int = audio_mod.FPS) -> int:
    """Video frames for ``n_samples`` of speech: round(duration * fps), integer arithmetic.

    Rounding (not flooring) makes the video end within half a frame of the speech, so the
    first frame starts with the audio and the last frame is the one showing its end.
    """
    return (2 * int(n_samples) * int(fps) + int(sample_rate)) // (2 * int(sample_rate))


def mel_windows(mel: np.ndarray, n_frames: int, fps: int = audio_mod.FPS) -> np.ndarray:
    """(T, 80, 16) windows centred on each video frame's time at ``fps``.

    At 25 fps this is exactly :func:`s3d_fast.data.audio.mel_windows` (round(3.2 i) - 8);
    other rates put the same 0.2 s window at round(80 i / fps) - 8.
    """
    if int(fps) == audio_mod.FPS:
        return audio_mod.mel_windows(mel, n_frames)
    i = np.arange(int(n_frames), dtype=np.int64)
    starts = (2 * MEL_PER_SECOND * i + int(fps)) // (2 * int(fps)) - audio_mod.MEL_STEP // 2
    idx = np.clip(starts[:, None] + np.arange(audio_mod.MEL_STEP)[None, :], 0, mel.shape[0] - 1)
    return np.ascontiguousarray(np.asarray(mel, np.float32)[idx].transpose(0, 2, 1))


@dataclass
class Speech:
    """Speech prepared for a render: ``mel`` (T, 80, 16) windows, one per video frame;
    ``samples`` 16 kHz mono float32 (None when built from precomputed windows)."""

    mel: np.ndarray
    fps: int
    samples: Optional[np.ndarray] = None
    sample_rate: int = audio_mod.SAMPLE_RATE

    @property
    def n_frames(self) -> int:
        return int(self.mel.shape[0])


def read_speech(path) -> audio_mod.Audio:
    """Speech from a sound file (libsndfile: wav, flac, ogg, mp3) or, failing that, from
    the audio track of anything FFmpeg decodes (mp4, m4a, mov, webm...)."""

    try:
        return audio_mod.load_audio(path)
    except AudioFileError as sound_error:
        if not os.path.isfile(os.fspath(path)):
            raise

        try:
            track = video.read_audio_track(path)
        except VideoError:
            raise sound_error from None
        if track is None:
            raise AudioFileError(f"{os.fspath(path)}: the file has no audio track") from None
        return audio_mod.prepare(track[0], track[1], where=os.fspath(path))


def check_fps(fps) -> int:
    if int(fps) != fps or not MIN_FPS <= int(fps) <= MAX_FPS:
        raise RenderError(f"--fps must be an integer in [{MIN_FPS}, {MAX_FPS}], got {fps}")
    return int(fps)


def load_speech(speech, fps: int = audio_mod.FPS) -> Speech:
    """A wav path (anything libsndfile reads), 16 kHz float samples, precomputed mel
    windows (T, 80, 16), or a :class:`Speech` -> :class:`Speech`."""
    fps = check_fps(fps)
    if isinstance(speech, Speech):
        return speech
    if isinstance(speech, (str, os.PathLike)):
        audio = read_speech(speech)
    else:
        arr = np.asarray(speech)
        if arr.ndim == 3:
            if arr.shape[1:] != (audio_mod.N_MELS, audio_mod.MEL_STEP) or arr.shape[0] < 1:
                raise RenderError(f"mel windows must be (T, {audio_mod.N_MELS}, {audio_mod.MEL_STEP}), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise RenderError("the mel windows contain NaN or infinite values")
            return Speech(np.ascontiguousarray(arr, np.float32), fps)
        audio = audio_mod.prepare(arr, audio_mod.SAMPLE_RATE, where="the speech samples")
    n = frame_count(audio.samples.shape[0], audio.sample_rate, fps)
    if n < 1:  # prepare() already refuses less than a 25 fps frame; lower --fps may need more
        raise audio_mod.AudioTooShortError(
            f"{audio.duration * 1000:.1f} ms of speech is shorter than one frame at {fps} fps"
        )
    mel = mel_windows(audio_mod.log_mel(audio.samples, audio.sample_rate), n, fps)
    return Speech(mel, fps, audio.samples, audio.sample_rate)
