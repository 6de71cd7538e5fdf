"""Phoneme inventory and random utterances.

Each phoneme carries what both sides need: acoustics (formants, voicing, frication band)
for :mod:`speech` and a viseme target with a per-parameter dominance for :mod:`visemes`.
Viseme parameters are jaw opening, lip width, lip rounding, all in [0, 1].
Formants are adult-male averages (Peterson & Barney); identities scale them. Open vowels
are louder than close ones (intrinsic vowel intensity), as in natural speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Phoneme:
    symbol: str
    kind: str  # vowel | bilabial | nasal | stop | fricative | approximant | silence
    formants: tuple[float, float, float]
    voicing: float  # amplitude of the voiced (harmonic) source
    noise: float  # amplitude of the frication noise
    noise_band: tuple[float, float]  # Hz
    viseme: tuple[float, float, float]  # jaw, width, rounding
    dominance: tuple[float, float, float]  # how strongly it imposes each viseme parameter
    duration: tuple[float, float]  # seconds at rate 1


_NEUTRAL_F = (500.0, 1500.0, 2500.0)
INVENTORY = {
    p.symbol: p
    for p in [
        Phoneme("a", "vowel", (730, 1090, 2440), 1.0, 0.0, (0, 0), (0.95, 0.55, 0.10), (1, 1, 1), (0.10, 0.20)),
        Phoneme("e", "vowel", (530, 1840, 2480), 0.85, 0.0, (0, 0), (0.55, 0.75, 0.05), (1, 1, 1), (0.09, 0.18)),
        Phoneme("i", "vowel", (270, 2290, 3010), 0.6, 0.0, (0, 0), (0.22, 0.95, 0.00), (1, 1.5, 1), (0.08, 0.16)),
        Phoneme("o", "vowel", (570, 840, 2410), 0.9, 0.0, (0, 0), (0.62, 0.25, 0.80), (1, 1, 1.5), (0.10, 0.20)),
        Phoneme("u", "vowel", (300, 870, 2240), 0.6, 0.0, (0, 0), (0.25, 0.10, 1.00), (1, 1.5, 2), (0.09, 0.17)),
        Phoneme("m", "bilabial", (250, 1100, 2300), 0.35, 0.0, (0, 0), (0.0, 0.45, 0.15), (6, 1, 0.5), (0.06, 0.10)),
        Phoneme("b", "bilabial", (250, 1000, 2300), 0.15, 0.0, (0, 0), (0.0, 0.45, 0.15), (6, 1, 0.5), (0.05, 0.08)),
        Phoneme("p", "bilabial", _NEUTRAL_F, 0.0, 0.0, (0, 0), (0.0, 0.45, 0.15), (6, 1, 0.5), (0.06, 0.09)),
        Phoneme("n", "nasal", (250, 1700, 2600), 0.35, 0.0, (0, 0), (0.18, 0.55, 0.10), (0.6, 0.3, 0.3), (0.05, 0.08)),
        Phoneme("t", "stop", _NEUTRAL_F, 0.0, 0.0, (0, 0), (0.15, 0.55, 0.10), (0.6, 0.3, 0.3), (0.05, 0.08)),
        Phoneme(
            "l", "approximant", (360, 1300, 2700), 0.7, 0.0, (0, 0), (0.30, 0.55, 0.10), (0.5, 0.3, 0.3), (0.05, 0.09)
        ),
        Phoneme(
            "s", "fricative", _NEUTRAL_F, 0.0, 0.5, (4000, 7800), (0.12, 0.75, 0.00), (1.5, 1.0, 1.0), (0.08, 0.14)
        ),
        Phoneme(
            "f", "fricative", _NEUTRAL_F, 0.0, 0.35, (1500, 7000), (0.08, 0.50, 0.05), (3.0, 0.8, 0.8), (0.07, 0.12)
        ),
        Phoneme(
            "sh", "fricative", _NEUTRAL_F, 0.0, 0.5, (2000, 5500), (0.15, 0.30, 0.75), (1.5, 1.0, 2.0), (0.08, 0.14)
        ),
        Phoneme("_", "silence", _NEUTRAL_F, 0.0, 0.0, (0, 0), (0.02, 0.45, 0.15), (0.4, 0.3, 0.3), (0.08, 0.30)),
    ]
}
SYMBOLS = tuple(INVENTORY)
_VOWELS = [s for s, p in INVENTORY.items() if p.kind == "vowel"]
_ONSETS = ["m", "b", "p", "n", "t", "l", "s", "f", "sh"]
_CODAS = ["m", "n", "t", "s", "l"]


@dataclass
class Segment:
    symbol: str
    start: float
    end: float

    @property
    def phoneme(self) -> Phoneme:
        return INVENTORY[self.symbol]

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)


def sample_utterance(rng: np.random.Generator, seconds: float, rate: float = 1.0) -> list[Segment]:
    """Random words of CV(C) syllables separated by pauses, exactly ``seconds`` long.

    ``rate`` > 1 speaks faster. Starts and ends with silence, as recordings do.
    """
    symbols: list[str] = ["_"]
    durations: list[float] = [rng.uniform(0.10, 0.25)]
    total = durations[0]

    def push(sym: str, scale: float = 1.0) -> None:
        nonlocal total
        lo, hi = INVENTORY[sym].duration
        d = rng.uniform(lo, hi) * scale / rate
        symbols.append(sym)
        durations.append(d)
        total += d

    while total < seconds - 0.25:
        for _ in range(rng.integers(1, 4)):  # a word of 1-3 syllables
            if rng.random() < 0.75:
                push(str(rng.choice(_ONSETS)))
            push(str(rng.choice(_VOWELS)))
            if rng.random() < 0.25:
                push(str(rng.choice(_CODAS)))
        if rng.random() < 0.45:
            push("_", scale=rng.uniform(0.5, 1.5))
    # Pad or cut the tail with silence so the utterance is exactly `seconds` long.
    if symbols[-1] != "_":
        symbols.append("_")
        durations.append(0.0)
    ends = np.cumsum(durations)
    segments: list[Segment] = []
    start = 0.0
    for sym, end in zip(symbols, ends):
        if start >= seconds:
            break
        segments.append(Segment(sym, start, float(min(end, seconds))))
        start = float(end)
    last = segments[-1]
    if last.symbol != "_":
        segments.append(Segment("_", last.end, seconds))
    else:
        last.end = seconds
    return [s for s in segments if s.end > s.start]


def symbol_at(segments: list[Segment], times: np.ndarray) -> np.ndarray:
    """Index into SYMBOLS of the phoneme sounding at each time."""
    ends = np.array([s.end for s in segments])
    idx = np.clip(np.searchsorted(ends, times, side="right"), 0, len(segments) - 1)
    table = np.array([SYMBOLS.index(s.symbol) for s in segments])
    return table[idx]
