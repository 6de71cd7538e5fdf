"""Phonemes -> per-frame visemes with co-articulation; blinks; head motion.

Co-articulation follows Cohen and Massaro's dominance model: every phoneme pulls each
viseme parameter towards its target with a dominance that is flat over the phoneme and
decays exponentially outside it, and a frame's value is the dominance-weighted mean of
all targets. Bilabials dominate the jaw so strongly that the lips really close for
/m b p/ even between open vowels, while /i u/ impose width and rounding on their
neighbours (anticipatory rounding). Values are averaged over the frame's exposure.
"""

from __future__ import annotations

import numpy as np

from .phonemes import Segment

_DECAY = 0.035  # seconds: how far a phoneme's influence reaches outside itself


def viseme_track(segments: list[Segment], times: np.ndarray, exposure: float = 0.02) -> np.ndarray:
    """(T, 3) jaw opening, lip width, lip rounding in [0, 1] at ``times`` (seconds)."""
    starts = np.array([s.start for s in segments])[:, None, None]
    ends = np.array([s.end for s in segments])[:, None, None]
    targets = np.array([s.phoneme.viseme for s in segments])[:, None, :]  # (P, 1, 3)
    strength = np.array([s.phoneme.dominance for s in segments])[:, None, :]
    # Sub-samples across the exposure so a short closure is not missed between frames.
    sub = (times[:, None] + np.linspace(-exposure, exposure, 5)[None, :]).reshape(1, -1, 1)
    outside = np.maximum(0.0, np.maximum(starts - sub, sub - ends))  # (P, T*5, 1)
    dom = strength * np.exp(-outside / _DECAY)
    value = (dom * targets).sum(0) / np.maximum(dom.sum(0), 1e-12)  # (T*5, 3)
    return np.clip(value.reshape(len(times), 5, 3).mean(1), 0.0, 1.0).astype(np.float32)


def blink_track(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Eyelid closure in [0, 1] per frame: blinks every 2-6 s, ~150 ms each."""
    closure = np.zeros(len(times), np.float32)
    t = rng.uniform(0.3, 2.5)
    end = times[-1] + 1.0 if len(times) else 0.0
    while t < end:
        dur = rng.uniform(0.12, 0.2)
        phase = (times - t) / dur
        inside = (phase > 0) & (phase < 1)
        closure[inside] = np.maximum(closure[inside], np.sin(np.pi * phase[inside]) ** 0.7)
        t += rng.uniform(2.0, 6.0)
    return closure


def head_motion(rng: np.random.Generator, times: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """(T, 6) smooth small head motion: yaw, pitch, roll (degrees) and x, y, z translation.

    A few slow sinusoids per axis with random phase: a few degrees, a few millimetres
    (the head is ~0.7 units in radius, so 0.03 units is about 4 mm).
    """
    amp = np.array([5.0, 3.5, 2.0, 0.03, 0.02, 0.02]) * amount
    out = np.zeros((len(times), 6))
    for axis in range(6):
        for _ in range(3):
            f = rng.uniform(0.08, 0.6)
            out[:, axis] += rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f * times + rng.uniform(0, 2 * np.pi))
    return (out / 1.2 * amp).astype(np.float32)


def head_turns(rng: np.random.Generator, times: np.ndarray, max_yaw: float = 45.0, max_pitch: float = 12.0):
    """(T, 6) like :func:`head_motion`, plus a turn of the head: from one yaw to another
    (each up to ``max_yaw`` degrees) over 0.6-1.5 s, and a held pitch up to ``max_pitch``."""
    out = head_motion(rng, times).astype(np.float64)
    yaw0, yaw1 = rng.uniform(-max_yaw, max_yaw, 2)
    pitch = rng.uniform(-0.7, 0.7) * max_pitch
    span = times[-1] if len(times) else 0.0
    start, duration = rng.uniform(0.1, 0.6) * span, rng.uniform(0.6, 1.5)
    ease = np.clip((times - start) / duration, 0.0, 1.0)
    ease = ease * ease * (3 - 2 * ease)
    out[:, 0] = np.clip(out[:, 0] + yaw0 + (yaw1 - yaw0) * ease, -max_yaw, max_yaw)
    out[:, 1] = np.clip(out[:, 1] + pitch, -max_pitch, max_pitch)
    return out.astype(np.float32)
