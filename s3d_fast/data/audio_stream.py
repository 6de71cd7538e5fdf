"""Speech features computed as the samples arrive, equal to the whole-file ones of :mod:`.audio`.

Three stages, each with ``push(...)`` returning what became final and ``flush()`` returning
the rest once the speech has ended:

- :class:`PreparedStream`: any rate, any channel count, float or integer PCM -> 16 kHz mono
  float32 in [-1, 1] (:func:`.audio.prepare`, with soxr's streaming resampler, whose output
  is the one-shot resampler's sample for sample; or, for live sound, a :class:`Decimator`);
- :class:`LogMelStream`: 16 kHz samples -> log-mel frames (:func:`.audio.log_mel`);
- :class:`MelWindowStream`: log-mel frames -> the (80, 16) window of each video frame
  (:func:`s3d_fast.render.api.mel_windows`, at any frame rate).

:class:`SpeechFeatureStream` chains the three. Values equal the whole-file path's to float
tolerance (about 1e-6: the mel projection's matrix product rounds differently for
different numbers of frames), and frame counts and window positions exactly.

Look-ahead, the least there can be: mel frame ``m`` is centred on sample ``200 m`` and its
800-sample STFT window reaches 400 samples (25 ms) past that, so it is final once sample
``200 m + 399`` has arrived (:data:`MEL_LOOKAHEAD`). The window of video frame ``i`` (0.2 s
centred on its time) ends with mel frame ``round(80 i / fps) + 7``, so it is final 1800
samples past the mel frame at the frame's time, and at most 1880 samples (117.5 ms) past
the frame's own time ``16000 i / fps`` (:data:`WINDOW_LOOKAHEAD`; the rounding of the window
position to whole mel frames moves it by at most 80 samples). Input at another rate adds
the resampler's own delay (:meth:`PreparedStream.delay`).
"""

from __future__ import annotations

import numpy as np
import soxr

from . import audio
from .errors import AudioFileError, AudioTooShortError, EmptyAudioError

MEL_LOOKAHEAD = audio.N_FFT // 2  # 400 samples, 25 ms
# The last mel frame of a window is 7 hops past the one at the frame's time, which is
# within 0.4 hop of it: 400 + 7 * 200 + 80 samples, 117.5 ms.
WINDOW_LOOKAHEAD = MEL_LOOKAHEAD + (audio.MEL_STEP // 2 - 1) * audio.HOP + 2 * audio.HOP // 5


def frame_count(n_samples: int, fps: int = audio.FPS, sample_rate: int = audio.SAMPLE_RATE) -> int:
    """Video frames of ``n_samples`` of speech: round(duration * fps) in integers (as rendering counts)."""
    return (2 * int(n_samples) * int(fps) + int(sample_rate)) // (2 * int(sample_rate))


def window_start(i, fps: int = audio.FPS):
    """First mel frame of video frame ``i``'s window: round(80 i / fps) - 8 (at 25 fps the data
    set's round(3.2 i) - 8), exactly, in integers; ``i`` an int or an integer array."""
    per_second = audio.SAMPLE_RATE // audio.HOP
    return (2 * per_second * i + int(fps)) // (2 * int(fps)) - audio.MEL_STEP // 2


class PreparedStream:
    """Streaming :func:`.audio.prepare`: ``push(samples)`` -> 16 kHz mono float32 in [-1, 1].

    ``samples`` are (n,) or (n, channels), float in [-1, 1] or integer PCM; every chunk has
    the first one's channel count. NaN or infinite samples raise :class:`AudioFileError`;
    ``flush()`` raises :class:`EmptyAudioError` when nothing came and
    :class:`AudioTooShortError` when less than one 25 fps video frame did.

    ``low_delay``: a rate that is a whole multiple of 16 kHz is brought down by a
    :class:`Decimator` (2 ms held back) instead of soxr (26 ms and bursts), for live sound; its
    output then differs from the one-shot resampler's (by about 1e-5 in the pass band).
    """

    def __init__(self, sample_rate: int, where: str = "audio", low_delay: bool = False):
        if int(sample_rate) != sample_rate or int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.where = where
        self.channels = None
        self.samples_in = 0  # per channel, at the source rate
        self.samples_out = 0  # at 16 kHz
        self._clipped = 0
        self._done = False
        self._resampler = self._decimator = None
        if low_delay and self.sample_rate > audio.SAMPLE_RATE and self.sample_rate % audio.SAMPLE_RATE == 0:
            self._decimator = Decimator(self.sample_rate // audio.SAMPLE_RATE)
        elif self.sample_rate != audio.SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(self.sample_rate, audio.SAMPLE_RATE, 1, "float32", "HQ")

    @property
    def clipped_fraction(self) -> float:
        total = self.samples_in * (self.channels or 1)
        return self._clipped / total if total else 0.0

    def delay(self) -> float:
        """Seconds the resampler holds back (0 at 16 kHz)."""
        if self._decimator is not None:
            return self._decimator.delay() / self.sample_rate
        return 0.0 if self._resampler is None else float(self._resampler.delay()) / self.sample_rate

    def push(self, samples) -> np.ndarray:
        if self._done:
            raise ValueError(f"{self.where}: samples pushed after flush()")
        x = audio.as_float32(samples)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise AudioFileError(f"{self.where}: expected (samples,) or (samples, channels), got shape {x.shape}")
        if self.channels is None and x.shape[0]:
            if x.shape[1] == 0:
                raise EmptyAudioError(f"{self.where}: the audio holds no channels")
            self.channels = int(x.shape[1])
        if x.shape[0] == 0:
            return np.zeros(0, np.float32)
        if x.shape[1] != self.channels:
            raise AudioFileError(f"{self.where}: a chunk of {x.shape[1]} channels after chunks of {self.channels}")
        if not np.isfinite(x).all():
            raise AudioFileError(f"{self.where}: the audio contains NaN or infinite samples (damaged file?)")
        self._clipped += int(np.count_nonzero(np.abs(x) >= audio._CLIP_LEVEL))
        self.samples_in += x.shape[0]
        mono = x.mean(axis=1) if self.channels > 1 else x[:, 0]
        return self._out(mono, last=False)

    def flush(self) -> np.ndarray:
        if self._done:
            return np.zeros(0, np.float32)
        self._done = True
        if self.samples_in == 0:
            raise EmptyAudioError(f"{self.where}: the audio holds no samples")
        tail = self._out(np.zeros(0, np.float32), last=True)
        if audio.num_video_frames(self.samples_out) < 1:
            raise AudioTooShortError(
                f"{self.where}: {self.samples_out / audio.SAMPLE_RATE * 1000:.1f} ms of audio is shorter than one "
                f"video frame ({1000 / audio.FPS:.0f} ms at {audio.FPS} fps)"
            )
        return tail

    def _out(self, mono: np.ndarray, last: bool) -> np.ndarray:
        if self._decimator is not None:
            mono = self._decimator.push(mono, last=last)
        elif self._resampler is not None:
            mono = np.asarray(self._resampler.resample_chunk(np.ascontiguousarray(mono), last=last), np.float32)
        else:
            mono = np.array(mono, np.float32)  # a copy: clipped in place below
        np.clip(mono, -1.0, 1.0, out=mono)  # the resampler overshoots next to clipped input
        self.samples_out += mono.shape[0]
        return mono


class Decimator:
    """Streaming down-sampling by a whole ``factor`` (48 kHz to 16 kHz: 3) through a
    windowed-sinc low-pass (Kaiser, 80 dB stopband from 0.49 of the output rate). It holds back
    ``HALF_WIDTH`` output periods (2 ms), where soxr's streaming resampler holds back about
    26 ms and gives its output in 30 ms bursts: for live sound, whose delay shows."""

    HALF_WIDTH = 32  # output samples either side of each output sample's centre the filter reads

    def __init__(self, factor: int):
        self.factor = int(factor)
        half = self.half = self.HALF_WIDTH * self.factor
        n = np.arange(-half, half + 1)
        cutoff = 0.45 / self.factor  # cycles per input sample
        taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(2 * half + 1, 8.0)
        self.taps = (taps / taps.sum()).astype(np.float32)
        self._buf = np.zeros(half, np.float32)  # input from padded index _base (zeros before the first sample)
        self._base = 0
        self.samples_in = 0
        self.samples_out = 0

    def delay(self) -> int:
        """Input samples held back."""
        return self.half

    def push(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """Output samples that became final; ``last``: the input ends here (ceil(n / factor) in all)."""
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        self.samples_in += x.shape[0]
        if last:
            self._buf = np.concatenate([self._buf, np.zeros(self.half, np.float32)])
        end = self._base + self._buf.shape[0]  # padded index past the last sample
        # Output k reads padded input [factor k, factor k + 2 half], centred on input factor k.
        count = (end - 2 * self.half - 1 - self.factor * self.samples_out) // self.factor + 1
        if last:
            count = min(count, -(-self.samples_in // self.factor) - self.samples_out)
        if count <= 0:
            return np.zeros(0, np.float32)
        start = self.factor * self.samples_out - self._base
        windows = np.lib.stride_tricks.sliding_window_view(self._buf[start:], 2 * self.half + 1)[:: self.factor][:count]
        out = windows @ self.taps
        self.samples_out += count
        keep = self.factor * self.samples_out - self._base
        self._buf = self._buf[keep:].copy()
        self._base += keep
        return out.astype(np.float32)


class LogMelStream:
    """Streaming :func:`.audio.log_mel`: ``push(16 kHz samples)`` -> (k, 80) log-mel frames
    that became final; ``flush()`` -> the last ones (whose STFT windows reach past the end,
    over zeros). In all ``1 + n // 200`` frames for ``n`` samples. Holds under 1000 samples."""

    def __init__(self):
        # The centred STFT's signal: N_FFT // 2 zeros, the pre-emphasised samples, and at the
        # end N_FFT // 2 zeros again. ``_buf`` holds it from the next frame's first sample.
        self._buf = np.zeros(audio.N_FFT // 2, np.float32)
        self._last = None  # the previous sample, for pre-emphasis
        self.samples = 0
        self.frames = 0  # emitted so far
        self._done = False

    def push(self, samples) -> np.ndarray:
        if self._done:
            raise ValueError("samples pushed after flush()")
        x = np.asarray(samples, np.float32).reshape(-1)
        if x.size == 0:
            return np.zeros((0, audio.N_MELS), np.float32)
        emphasised = np.empty_like(x)
        emphasised[0] = x[0] if self._last is None else x[0] - audio.PREEMPHASIS * self._last
        emphasised[1:] = x[1:] - audio.PREEMPHASIS * x[:-1]
        self._last = x[-1]
        self.samples += x.size
        self._buf = np.concatenate([self._buf, emphasised])
        return self._emit()

    def flush(self) -> np.ndarray:
        if self._done:
            return np.zeros((0, audio.N_MELS), np.float32)
        if self.samples == 0:
            raise ValueError("log-mel of no samples")
        self._done = True
        self._buf = np.concatenate([self._buf, np.zeros(audio.N_FFT // 2, np.float32)])
        return self._emit()

    def _emit(self) -> np.ndarray:
        count = (self._buf.shape[0] - audio.N_FFT) // audio.HOP + 1 if self._buf.shape[0] >= audio.N_FFT else 0
        if count <= 0:
            return np.zeros((0, audio.N_MELS), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, audio.N_FFT)[:: audio.HOP][:count]
        mel = audio.log_mel_of_frames(frames)
        self._buf = self._buf[count * audio.HOP :].copy()
        self.frames += count
        return mel


class MelWindowStream:
    """Streaming per-frame mel windows: ``push(mel frames, limit)`` -> (k, 80, 16) windows of
    the next video frames whose 16 mel frames have all arrived (and, given ``limit``, only of
    frames below it); ``flush(n_frames)`` -> the windows of the rest up to ``n_frames``,
    those reaching past the last mel frame repeating it. Holds at most 17 mel frames."""

    def __init__(self, fps: int = audio.FPS):
        self.fps = int(fps)
        self._mel = np.zeros((0, audio.N_MELS), np.float32)
        self._base = 0  # mel frame index of self._mel[0]
        self.frames = 0  # windows emitted so far
        self._done = False

    def push(self, mel: np.ndarray, limit: int | None = None) -> np.ndarray:
        if self._done:
            raise ValueError("mel frames pushed after flush()")
        mel = np.asarray(mel, np.float32).reshape(-1, audio.N_MELS)
        if mel.shape[0]:
            self._mel = np.concatenate([self._mel, mel])
        available = self._base + self._mel.shape[0]
        # Frame i is final once mel frame window_start(i) + 15 has arrived.
        n = self.frames
        while window_start(n, self.fps) + audio.MEL_STEP <= available and (limit is None or n < limit):
            n += 1
        return self._emit(n, available)

    def flush(self, n_frames: int) -> np.ndarray:
        if self._done:
            return np.zeros((0, audio.N_MELS, audio.MEL_STEP), np.float32)
        self._done = True
        available = self._base + self._mel.shape[0]
        if available == 0:
            raise ValueError("mel windows of no mel frames")
        return self._emit(max(int(n_frames), self.frames), available)

    def _emit(self, n: int, available: int) -> np.ndarray:
        if n <= self.frames:
            return np.zeros((0, audio.N_MELS, audio.MEL_STEP), np.float32)
        i = np.arange(self.frames, n, dtype=np.int64)
        idx = window_start(i, self.fps)[:, None] + np.arange(audio.MEL_STEP)[None, :]
        np.clip(idx, 0, available - 1, out=idx)
        windows = np.ascontiguousarray(self._mel[idx - self._base].transpose(0, 2, 1))
        self.frames = n
        keep_from = max(0, min(int(window_start(n, self.fps)), available - 1))  # the next window's first frame
        if keep_from > self._base:
            self._mel = self._mel[keep_from - self._base :].copy()
            self._base = keep_from
        return windows


class SpeechFeatureStream:
    """Samples in, mel windows out: ``push(samples)`` -> (k, 80, 16) windows of the next video
    frames at ``fps``, each as soon as its look-ahead has arrived and the speech so far
    ensures the frame exists (frames = round(duration * fps)); ``flush()`` -> the rest.
    ``frames`` counts the windows given out; after ``flush()``, ``n_frames`` is the total."""

    def __init__(self, sample_rate: int = audio.SAMPLE_RATE, fps: int = audio.FPS, where: str = "the speech"):
        self.fps = int(fps)
        self.prepared = PreparedStream(sample_rate, where)
        self.mel = LogMelStream()
        self.windows = MelWindowStream(self.fps)
        self.n_frames = None

    @property
    def frames(self) -> int:
        return self.windows.frames

    def push(self, samples) -> np.ndarray:
        return self.push_prepared(self.prepared.push(samples))

    def push_prepared(self, samples16k: np.ndarray) -> np.ndarray:
        """Like ``push``, for samples already at 16 kHz mono (what ``prepared`` gives out)."""
        mel = self.mel.push(samples16k)
        return self.windows.push(mel, limit=frame_count(self.mel.samples, self.fps))

    def flush(self) -> np.ndarray:
        tail = self.prepared.flush()
        return self.flush_prepared(tail)

    def flush_prepared(self, tail16k: np.ndarray) -> np.ndarray:
        """Like ``flush``, for the last samples already at 16 kHz mono."""
        first = self.push_prepared(tail16k)
        n = frame_count(self.mel.samples, self.fps)
        if n < 1:
            raise AudioTooShortError(
                f"{self.mel.samples / audio.SAMPLE_RATE * 1000:.1f} ms of speech is shorter than one frame "
                f"at {self.fps} fps"
            )
        self.n_frames = n
        more = self.windows.push(self.mel.flush(), limit=n)
        return np.concatenate([first, more, self.windows.flush(n)])
