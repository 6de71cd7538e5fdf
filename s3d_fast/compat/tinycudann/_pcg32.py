"""tiny-cuda-nn's random generator (PCG32, O'Neill's XSH-RR 64/32 with stream 1), so
parameters are initialised from a seed to the same numbers as tiny-cuda-nn's.

``next_floats(n)`` draws what ``n`` calls of ``pcg32::next_float`` would, vectorised:
the i-th state is ``A_i * s + C_i`` (mod 2^64) with jump coefficients computed once.
"""

from __future__ import annotations

import functools

import numpy as np

_MULT = 0x5851F42D4C957F2D
_MASK64 = (1 << 64) - 1
_CHUNK = 1 << 18  # draws per vectorised block


def _jump(delta: int, inc: int) -> tuple[int, int]:
    """(mult, plus) with state_{k+delta} = mult * state_k + plus (Brown's method)."""
    cur_mult, cur_plus, acc_mult, acc_plus = _MULT, inc, 1, 0
    delta &= _MASK64
    while delta:
        if delta & 1:
            acc_mult = acc_mult * cur_mult & _MASK64
            acc_plus = (acc_plus * cur_mult + cur_plus) & _MASK64
        cur_plus = (cur_mult + 1) * cur_plus & _MASK64
        cur_mult = cur_mult * cur_mult & _MASK64
        delta >>= 1
    return acc_mult, acc_plus


@functools.lru_cache(maxsize=4)
def _jump_table(inc: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of states 0.._CHUNK-1 ahead, by doubling."""
    mult = np.ones(1, dtype=np.uint64)
    plus = np.zeros(1, dtype=np.uint64)
    while len(mult) < _CHUNK:
        m, p = _jump(len(mult), inc)
        mult = np.concatenate([mult, mult * np.uint64(m)])
        plus = np.concatenate([plus, plus * np.uint64(m) + np.uint64(p)])
    return mult, plus


def _output_floats(states: np.ndarray) -> np.ndarray:
    """next_float() of each old state: the top 23 bits of the XSH-RR output as a float in [0, 1)."""
    xorshifted = (((states >> np.uint64(18)) ^ states) >> np.uint64(27)) & np.uint64(0xFFFFFFFF)
    rot = states >> np.uint64(59)
    left = (np.uint64(32) - rot) & np.uint64(31)
    word = ((xorshifted >> rot) | (xorshifted << left)) & np.uint64(0xFFFFFFFF)
    bits = ((word >> np.uint64(9)) | np.uint64(0x3F800000)).astype(np.uint32)
    return bits.view(np.float32) - np.float32(1.0)


class Pcg32:
    def __init__(self, seed: int, stream: int = 1):
        self.inc = ((stream << 1) | 1) & _MASK64
        self.state = 0
        self.advance(1)
        self.state = (self.state + seed) & _MASK64
        self.advance(1)

    def advance(self, delta: int) -> None:
        mult, plus = _jump(delta, self.inc)
        self.state = (self.state * mult + plus) & _MASK64

    def next_floats(self, n: int) -> np.ndarray:
        """float32 draws in [0, 1), as n successive next_float() calls."""
        mult, plus = _jump_table(self.inc)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, _CHUNK):
            count = min(_CHUNK, n - start)
            states = mult[:count] * np.uint64(self.state) + plus[:count]
            out[start : start + count] = _output_floats(states)
            self.advance(count)
        return out
