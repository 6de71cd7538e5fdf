"""Phonemes -> speech: a source-filter formant synthesiser, vectorised in numpy.

Voiced sounds are a sum of harmonics of a moving f0 (the glottal source, about -6 dB per
octave after lip radiation) weighted by a three-formant vocal-tract envelope whose
formants glide between phoneme targets (acoustic co-articulation). Fricatives and stop
bursts are white noise shaped per STFT frame by the phoneme's band; a little aspiration
noise rides on voicing. Everything is driven by 5 ms control tracks, so nothing loops
per sample in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .phonemes import Segment

SAMPLE_RATE = 16000
_HOP = 80  # control rate: 5 ms
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
_TOP = 7600.0  # stay under Nyquist (8 kHz) with margin


@dataclass
class Voice:
    f0: float = 120.0  # mean pitch, Hz
    rate: float = 1.0  # speaking rate (durations are divided by it)
    formant_scale: float = 1.0  # shorter vocal tract -> higher formants
    breathiness: float = 0.05
    intonation: float = 0.08  # depth of the slow pitch contour


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return track
    kernel = np.ones(width) / width
    pad = np.pad(track, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(pad, kernel, mode="valid")


def control_tracks(segments: list[Segment], n_ctrl: int, voice: Voice) -> dict:
    """Per 5 ms: formants (3, n), voicing and noise amplitudes, noise band edges."""
    t = np.arange(n_ctrl) * _HOP / SAMPLE_RATE
    ends = np.array([s.end for s in segments])
    seg = np.clip(np.searchsorted(ends, t, side="right"), 0, len(segments) - 1)
    ph = [s.phoneme for s in segments]
    voicing = np.array([p.voicing for p in ph])[seg]
    noise = np.array([p.noise for p in ph])[seg]
    lo = np.array([p.noise_band[0] for p in ph])[seg].astype(float)
    hi = np.array([p.noise_band[1] for p in ph])[seg].astype(float)
    # Stop releases: a 12 ms broadband burst at the end of each closure.
    for s in segments:
        if s.phoneme.kind in ("stop", "bilabial") and s.symbol != "m":
            burst = (t >= s.end - 0.012) & (t < s.end)
            noise[burst] = 0.6
            lo[burst], hi[burst] = (3000.0, _TOP) if s.symbol == "t" else (400.0, _TOP)
    # Formants glide between targets placed at segment centres.
    centres = np.array([s.centre for s in segments])
    formants = np.stack([np.interp(t, centres, [p.formants[i] for p in ph]) * voice.formant_scale for i in range(3)])
    # Onsets and offsets take ~20 ms, not one sample.
    voicing = _smooth(voicing, 4)
    noise = _smooth(noise, 2)
    return {"t": t, "formants": formants, "voicing": voicing, "noise": noise, "lo": lo, "hi": hi}


def _envelope(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Vocal-tract gain at ``freqs`` (K, n) for formants (3, n): product of resonances."""
    gain = np.ones_like(freqs)
    for i in range(3):
        f_i = formants[i][None, :]
        gain *= f_i**2 / np.sqrt((f_i**2 - freqs**2) ** 2 + (_BANDWIDTHS[i] * freqs) ** 2)
    return gain


def _upsample(track: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of control-rate rows (..., n_ctrl) to sample rate (..., n)."""
    pos = np.arange(n) / _HOP
    i0 = np.minimum(pos.astype(np.int64), track.shape[-1] - 2)
    frac = (pos - i0).astype(np.float32)
    return track[..., i0] * (1 - frac) + track[..., i0 + 1] * frac


def synthesize(segments: list[Segment], seconds: float, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    """16 kHz mono float32 speech for ``segments``; peak normalised to 0.7."""
    n = int(round(seconds * SAMPLE_RATE))
    n_ctrl = n // _HOP + 2
    ctl = control_tracks(segments, n_ctrl, voice)
    t = ctl["t"]
    phase0, phase1 = rng.uniform(0, 2 * np.pi, 2)
    f0_ctrl = voice.f0 * (
        1.0
        + voice.intonation * np.sin(2 * np.pi * 0.6 * t + phase0)
        + 0.4 * voice.intonation * np.sin(2 * np.pi * 2.1 * t + phase1)
        - 0.06 * t / max(seconds, 1e-3)
    )
    f0 = _upsample(f0_ctrl[None, :], n)[0]
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE

    # Harmonic amplitudes at control rate, then summed in time chunks to bound memory.
    k = np.arange(1, int(_TOP / f0_ctrl.min()) + 1, dtype=np.float64)[:, None]
    freqs = k * f0_ctrl[None, :]
    amps = _envelope(freqs, ctl["formants"]) / k * ctl["voicing"][None, :]
    amps[freqs > _TOP] = 0.0
    amps = amps.astype(np.float32)
    voiced = np.zeros(n, np.float32)
    chunk = 8000
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        pos = np.arange(s, e) / _HOP
        i0 = np.minimum(pos.astype(np.int64), n_ctrl - 2)
        frac = (pos - i0).astype(np.float32)
        a = amps[:, i0] * (1 - frac) + amps[:, i0 + 1] * frac
        voiced[s:e] = np.einsum("kn,kn->n", a, np.sin(k.astype(np.float32) * phase[s:e].astype(np.float32)))
    voiced /= max(1e-6, float(np.abs(voiced).max()))

    noise = _shaped_noise(n, ctl, voice, rng)
    out = 0.8 * voiced + noise
    out += rng.normal(0.0, 2e-4, n)  # a room's noise floor: real recordings are never digital zero
    return (0.7 * out / max(1e-6, float(np.abs(out).max()))).astype(np.float32)


def _shaped_noise(n: int, ctl: dict, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    nper, hop = 256, 64
    freqs, times, spec = signal.stft(white, fs=SAMPLE_RATE, nperseg=nper, noverlap=nper - hop, boundary="even")
    # Per STFT frame: the frication band (soft 300 Hz skirts) plus aspiration under voicing.
    ci = np.clip(np.round(times * SAMPLE_RATE / _HOP).astype(int), 0, ctl["t"].shape[0] - 1)
    f = freqs[:, None]
    lo, hi = ctl["lo"][ci][None, :], ctl["hi"][ci][None, :]
    band = 1.0 / (1.0 + np.exp(-(f - lo) / 150.0)) / (1.0 + np.exp((f - hi) / 150.0))
    aspiration = voice.breathiness * ctl["voicing"][ci][None, :] * (1.0 / (1.0 + np.exp(-(f - 600.0) / 200.0)))
    gain = ctl["noise"][ci][None, :] * band * 0.35 + aspiration * 0.15
    _, shaped = signal.istft(spec * gain, fs=SAMPLE_RATE, nperseg=nper, noverlap=nper - hop, boundary=True)
    out = np.zeros(n)
    m = min(n, shaped.shape[0])
    out[:m] = shaped[:m]
    return out
