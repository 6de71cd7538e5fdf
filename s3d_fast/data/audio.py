"""Speech audio: decoding, 16 kHz mono resampling and log-mel windows per video frame.

Conventions (docs/design.md sections 4 and 5a): 16 kHz mono float32 in [-1, 1]; an 80-band log-mel
spectrogram with n_fft 800, hop 200, window 800 (80 mel frames per second, as in
Wav2Lip and SyncNet); 25 fps video; video frame i owns the 16 mel frames starting at
round(3.2 * i) - 8, and windows reaching past either end repeat the first/last mel frame.

Defined behaviour at the edges of usable input:
- missing / corrupt / undecodable file: :class:`AudioFileError`;
- no samples at all: :class:`EmptyAudioError`;
- shorter than one video frame (640 samples at 16 kHz): :class:`AudioTooShortError`,
  because no video frame would own any audio;
- NaN or infinite samples: :class:`AudioFileError` (the file is damaged);
- samples outside [-1, 1] (float files, or resampler overshoot next to clipped input)
  are hard-clipped to [-1, 1]; the fraction of full-scale samples is reported in
  :attr:`Audio.clipped_fraction` so callers can warn, but clipped speech is still speech;
- digital silence is valid: its log-mel sits at the floor (``MEL_MIN``) everywhere,
  never NaN or -inf, and :attr:`Audio.is_silent` says so.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from ..atomic import atomic_path
from .errors import AudioFileError, AudioTooShortError, EmptyAudioError

SAMPLE_RATE = 16000
FPS = 25
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
MEL_FMIN = 55.0
MEL_FMAX = 7600.0
MEL_STEP = 16  # mel frames per video frame window (0.2 s)
PREEMPHASIS = 0.97
# Wav2Lip's dB scaling: 20 log10(max(1e-5, |S|)) - 20 dB, then [-100, 0] dB -> [-4, 4].
_REF_LEVEL_DB = 20.0
_MIN_LEVEL_DB = -100.0
MEL_MAX = 4.0
MEL_MIN = -4.0
# Samples at or above this magnitude count as clipped (full scale of 16-bit PCM).
_CLIP_LEVEL = 32767.0 / 32768.0
# Peak below this (about -90 dBFS) is treated as silence.
_SILENCE_PEAK = 3e-5
# A quiet room through a microphone (about -60 dBFS): one of the inputs that mean a closed mouth.
ROOM_NOISE_STD = 1e-3


@dataclass
class Audio:
    """Decoded speech: ``samples`` is mono float32 in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    clipped_fraction: float

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)

    @property
    def is_silent(self) -> bool:
        return self.samples.size == 0 or float(np.max(np.abs(self.samples))) < _SILENCE_PEAK

    @property
    def num_video_frames(self) -> int:
        return num_video_frames(self.samples.shape[0], self.sample_rate)


def num_video_frames(n_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Video frames fully covered by ``n_samples`` of audio (integer arithmetic, no drift)."""
    return (int(n_samples) * int(fps)) // int(sample_rate)


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); a no-op at equal rates."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if int(source_rate) == int(target_rate) or samples.size == 0:
        return samples
    return np.asarray(soxr.resample(samples, int(source_rate), int(target_rate), quality="HQ"), dtype=np.float32)


def as_float32(samples: np.ndarray) -> np.ndarray:
    """Float samples as float32; integer PCM scaled by its full scale."""
    samples = np.asarray(samples)
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        # Unsigned PCM (8-bit wav) is offset binary: centre it before scaling.
        offset = (int(info.max) + 1) // 2 if samples.dtype.kind == "u" else 0
        samples = (samples.astype(np.float64) - offset) / float(int(info.max) + 1 - offset)
    return samples.astype(np.float32, copy=False)


def prepare(samples: np.ndarray, sample_rate: int, *, where: str = "audio") -> Audio:
    """Down-mix, validate, resample to 16 kHz and clip an in-memory signal.

    ``samples`` is (n,) or (n, channels): float in [-1, 1], or integer PCM (scaled by its
    full scale); ``where`` names the source in errors.
    """
    samples = as_float32(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2:
        raise AudioFileError(f"{where}: expected (samples,) or (samples, channels), got shape {samples.shape}")
    channels = samples.shape[1]
    if samples.shape[0] == 0 or channels == 0:
        raise EmptyAudioError(f"{where}: the audio holds no samples")
    if not np.isfinite(samples).all():
        raise AudioFileError(f"{where}: the audio contains NaN or infinite samples (damaged file?)")
    # Clipping is measured on the source, before resampling smears it.
    clipped = float(np.mean(np.abs(samples) >= _CLIP_LEVEL))
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    mono = resample(mono, sample_rate, SAMPLE_RATE)
    # The resampler overshoots next to clipped input; keep the [-1, 1] contract.
    np.clip(mono, -1.0, 1.0, out=mono)
    if num_video_frames(mono.shape[0]) < 1:
        raise AudioTooShortError(
            f"{where}: {mono.shape[0] / SAMPLE_RATE * 1000:.1f} ms of audio is shorter than one "
            f"video frame ({1000 / FPS:.0f} ms at {FPS} fps)"
        )
    return Audio(mono, SAMPLE_RATE, int(sample_rate), int(channels), clipped)


MAX_SECONDS = 3 * 3600  # longest speech read (about 0.7 GB of 16 kHz float samples)
MAX_CHANNELS = 64


def load_audio(path) -> Audio:
    """Read anything libsndfile reads (wav, flac, ogg, ...) as 16 kHz mono float32."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioFileError(f"{path}: no such audio file")
    try:
        samples, rate = _read_blocks(path)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioFileError(f"{path}: cannot decode audio ({exc})") from None
    return prepare(samples, rate, where=path)


def _read_blocks(path: str) -> tuple[np.ndarray, int]:
    """Decode in blocks: what the file holds, never what its header claims (a FLAC header
    can claim 2^36 samples, which reading at once would allocate up front)."""
    with sf.SoundFile(path) as f:
        rate, channels = int(f.samplerate), int(f.channels)
        if not 0 < channels <= MAX_CHANNELS:
            raise AudioFileError(f"{path}: {channels} audio channels (at most {MAX_CHANNELS})")
        limit = MAX_SECONDS * rate
        blocks, total = [], 0
        while True:
            block = f.read(frames=1 << 16, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            total += block.shape[0]
            if total > limit:
                raise AudioFileError(f"{path}: longer than {MAX_SECONDS // 3600} hours of audio; cut it first")
            blocks.append(block)
    samples = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return samples, rate


def write_wav(path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav to a temporary name, then rename (never a half-written file)."""
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0), int(sample_rate), subtype="PCM_16")


@functools.lru_cache(maxsize=4)
def _mel_basis(sample_rate: int) -> np.ndarray:
    # Imported here: librosa brings scipy.signal and numba (about 3 s), which a command
    # that stops at a bad argument, or renders from a baked identity, never needs.
    from librosa.filters import mel as mel_filters

    return mel_filters(sr=sample_rate, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    # Periodic Hann (the STFT convention; scipy/librosa get_window("hann", fftbins=True)).
    n = np.arange(WIN)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN)).astype(np.float32)


def log_mel(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """80-band log-mel of 16 kHz mono audio, shape (n_mel_frames, 80), values in [-4, 4].

    Pre-emphasis 0.97, |STFT| (Hann, centred, zero padded), librosa's Slaney mel bank
    (55-7600 Hz), Wav2Lip's dB normalisation. n_mel_frames = 1 + len(samples) // 200.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"log_mel expects {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; resample first")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"log_mel expects non-empty mono samples, got shape {x.shape}")
    emphasised = np.empty_like(x)
    emphasised[0] = x[0]
    emphasised[1:] = x[1:] - PREEMPHASIS * x[:-1]
    # Centred frames over zero padding (librosa's center=True, pad_mode="constant"),
    # framed here so that inputs shorter than n_fft need no special case.
    padded = np.pad(emphasised, (N_FFT // 2, N_FFT // 2))
    return log_mel_of_frames(np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP])


def log_mel_of_frames(frames: np.ndarray) -> np.ndarray:
    """(n, N_FFT) pre-emphasised, padded 16 kHz frames -> (n, 80) log-mel (the step
    :func:`log_mel` and the streaming :mod:`s3d_fast.data.audio_stream` share)."""
    spec = np.abs(np.fft.rfft(frames * _hann(), axis=1)).T  # (401, n)
    mel = _mel_basis(SAMPLE_RATE) @ spec  # (80, n)
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - _REF_LEVEL_DB
    norm = (MEL_MAX - MEL_MIN) * ((db - _MIN_LEVEL_DB) / -_MIN_LEVEL_DB) + MEL_MIN
    return np.clip(norm, MEL_MIN, MEL_MAX).T.astype(np.float32)


def window_starts(n_video_frames: int) -> np.ndarray:
    """First mel frame of each video frame's window: round(3.2 * i) - 8, exactly.

    round(16 i / 5) never ties, so floor((32 i + 5) / 10) is the same number without
    floating point.
    """
    i = np.arange(int(n_video_frames), dtype=np.int64)
    return (32 * i + 5) // 10 - MEL_STEP // 2


def mel_windows(mel: np.ndarray, n_video_frames: int) -> np.ndarray:
    """Per video frame, its 16 mel frames: (T, 80, 16), channels first for Conv1d.

    Windows reaching before the first / after the last mel frame repeat that frame.
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != N_MELS or mel.shape[0] == 0:
        raise ValueError(f"mel must be (n_frames, {N_MELS}) with n_frames > 0, got {mel.shape}")
    idx = window_starts(n_video_frames)[:, None] + np.arange(MEL_STEP)[None, :]
    np.clip(idx, 0, mel.shape[0] - 1, out=idx)
    return np.ascontiguousarray(mel[idx].transpose(0, 2, 1))


def rest_mels() -> np.ndarray:
    """Mel windows (2, 80, 16) of the two inputs that mean a closed mouth: digital silence
    (``[0]``) and a quiet room's noise floor (``[1]``: seeded white noise at
    ``ROOM_NOISE_STD``), each one video frame from the middle of 0.4 s of it.

    Checkpoints differ in which of the two they read as closed (one trained run opens its
    mouth half way for zeros and not for the noise), so what a bake takes as the rest is
    measured on both."""
    frames = 10
    n = frames * SAMPLE_RATE // FPS
    noise = (ROOM_NOISE_STD * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    signals = (np.zeros(n, np.float32), noise)
    return np.stack([mel_windows(log_mel(signal), frames)[frames // 2] for signal in signals])


def audio_features(audio: Audio, n_video_frames: int | None = None) -> np.ndarray:
    """Mel windows for every video frame the audio covers (or for ``n_video_frames``)."""
    n = audio.num_video_frames if n_video_frames is None else int(n_video_frames)
    return mel_windows(log_mel(audio.samples, audio.sample_rate), n)
