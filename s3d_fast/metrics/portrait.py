"""Figures for a portrait spoken without a ground-truth video: how much of the photo is
kept, whether the mouth follows the speech, and whether a pixel grid shows."""

from __future__ import annotations

import numpy as np

from ..data.preprocess.landmarks import detect

UPPER_LIP, LOWER_LIP = 13, 14  # mediapipe face mesh: the inner lips' midpoints
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17  # and the outer ones
FOREHEAD, CHIN = 10, 152


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images over the pixels of a boolean mask (99 when equal)."""
    if a.shape != b.shape or mask.shape != a.shape[:2] or not mask.any():
        raise ValueError(f"need two equal images and a non-empty mask of their size, got {a.shape}, {b.shape}")
    d = (a.astype(np.float64) - b.astype(np.float64))[mask] / 255.0
    mse = float((d**2).mean())
    return 99.0 if mse < 1e-10 else -10.0 * np.log10(mse)


def lip_gap(frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) the inner lips' gap and (T,) the outer lips' height, each as a fraction of the
    face's height (forehead to chin), read by mediapipe's face mesh, and (T,) bool where a
    face was found (NaN elsewhere). The outer height also reads an opening that shows
    teeth, which the face mesh can take for closed inner lips."""
    lm, found = detect(np.asarray(frames))
    height = np.linalg.norm(lm[:, FOREHEAD, :2] - lm[:, CHIN, :2], axis=1)
    gap = np.linalg.norm(lm[:, UPPER_LIP, :2] - lm[:, LOWER_LIP, :2], axis=1)
    outer = np.linalg.norm(lm[:, UPPER_LIP_TOP, :2] - lm[:, LOWER_LIP_BOTTOM, :2], axis=1)
    return gap / height, outer / height, found


def speech_envelope(samples: np.ndarray, n_frames: int, fps: int, sample_rate: int) -> np.ndarray:
    """(n_frames,) RMS loudness of the speech in a two-frame window around each frame."""
    hop = sample_rate / fps
    out = np.zeros(n_frames)
    for i in range(n_frames):
        centre = int((i + 0.5) * hop)
        window = samples[max(0, centre - int(hop)) : centre + int(hop)]
        out[i] = np.sqrt(np.mean(np.square(window, dtype=np.float64))) if window.size else 0.0
    return out


def grid_energy(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of an image region's spectral power at the periods of a 2x and 4x upsampling
    grid (2 and 4 pixels, on either axis): what a checkerboard from super-resolution adds.
    Compare with the same figure of the photo. ``box`` (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    grey = image[y0:y1, x0:x1].astype(np.float64).mean(-1)
    grey -= grey.mean()
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy = np.abs(np.fft.fftfreq(grey.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(grey.shape[1]))[None, :]
    tol = 1.5 / min(grey.shape)

    def at(f):
        return (np.abs(f - 0.25) < tol) | (np.abs(f - 0.5) < tol)

    grid = (at(fy) | at(fx)) & ((fy > 0.2) | (fx > 0.2))
    total = power.sum()
    return float(power[grid].sum() / total) if total > 0 else 0.0
