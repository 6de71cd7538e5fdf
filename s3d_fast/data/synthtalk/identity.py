"""Random identities: face geometry, skin, eyes, brows, hair, accessories, voice, light.

An identity is a pure function of its seed, so held-out identities are simply other
seeds of the same generator, and a data set can be regenerated bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .speech import Voice

# Skin tones from very light to very dark (sRGB albedo, 0-1).
_SKIN = np.array(
    [
        [0.97, 0.82, 0.72],
        [0.92, 0.74, 0.60],
        [0.84, 0.62, 0.47],
        [0.70, 0.50, 0.36],
        [0.52, 0.35, 0.24],
        [0.36, 0.24, 0.16],
    ]
)
_IRIS = np.array(
    [
        [0.35, 0.20, 0.08],
        [0.18, 0.10, 0.05],
        [0.25, 0.45, 0.70],
        [0.30, 0.50, 0.30],
        [0.50, 0.40, 0.20],
        [0.45, 0.50, 0.55],
    ]
)
_HAIR = np.array(
    [
        [0.05, 0.04, 0.04],
        [0.20, 0.12, 0.07],
        [0.38, 0.24, 0.12],
        [0.55, 0.25, 0.10],
        [0.85, 0.70, 0.40],
        [0.70, 0.70, 0.70],
        [0.20, 0.30, 0.70],
        [0.80, 0.35, 0.55],
    ]
)
_HAIR_P = np.array([0.25, 0.22, 0.17, 0.09, 0.12, 0.07, 0.04, 0.04])
HAIR_STYLES = ("short", "long", "bun", "crop")
ACCESSORIES = ("glasses", "hat", "earrings")
_ACCESSORY_P = np.array([0.45, 0.2, 0.35])  # hats hide the hair, so they are the rarest


@dataclass
class Noise:
    """A smooth 3-D texture: a sum of random plane waves (cheap, vectorised, seeded)."""

    waves: np.ndarray  # (J, 3) wave vectors
    phases: np.ndarray  # (J,)

    @classmethod
    def sample(cls, rng: np.random.Generator, freq: float, n: int = 8) -> Noise:
        dirs = rng.normal(size=(n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        scales = freq * rng.uniform(0.5, 2.0, size=(n, 1))
        return cls(dirs * scales, rng.uniform(0, 2 * np.pi, n))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Values in about [-1, 1] at points (M, 3)."""
        return np.sin(p @ self.waves.T + self.phases).mean(1) * np.sqrt(2.0)


@dataclass
class Identity:
    seed: int
    shape: tuple[float, float, float]  # head width, height, depth scales
    jaw_width: float
    nose_size: float
    skin: tuple[float, float, float]
    skin_noise_freq: float
    skin_noise_amp: float
    freckles: float
    blush: float
    lip_color: tuple[float, float, float]
    eye_spacing: float
    eye_size: float
    iris: tuple[float, float, float]
    brow_thickness: float
    brow_angle: float  # degrees
    hair_color: tuple[float, float, float]
    hair_style: str
    hairline: float
    accessories: list[str]
    accessory_color: tuple[float, float, float]
    background: tuple[float, float, float]
    light_azimuth: float  # degrees
    light_elevation: float
    voice: Voice
    noise: Noise = field(repr=False, default=None)

    def summary(self) -> dict:
        """JSON-safe description for the manifest."""
        d = asdict(self)
        d.pop("noise")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _pick(rng, table, p=None):
    return table[rng.choice(len(table), p=p)]


def sample_identity(seed: int) -> Identity:
    rng = np.random.default_rng([0x5EED, int(seed)])
    t = rng.uniform(0, len(_SKIN) - 1)
    i0 = int(np.floor(t))
    skin = _SKIN[i0] * (1 - (t - i0)) + _SKIN[min(i0 + 1, len(_SKIN) - 1)] * (t - i0)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    hair = np.clip(_pick(rng, _HAIR, _HAIR_P) * rng.uniform(0.85, 1.15, 3), 0, 1)
    n_acc = 1 if rng.random() < 0.7 else 2
    accessories = sorted(rng.choice(ACCESSORIES, n_acc, replace=False, p=_ACCESSORY_P).tolist())
    style = str(rng.choice(HAIR_STYLES))
    f0 = rng.uniform(85, 230)
    # Higher voices tend to come with shorter vocal tracts: correlate formants with f0.
    formant_scale = 0.92 + 0.22 * (f0 - 85) / 145 + rng.uniform(-0.03, 0.03)
    lip = np.clip(skin * np.array([0.92, 0.62, 0.62]) + np.array([0.06, 0.0, 0.02]) * rng.uniform(0.5, 1.5), 0, 1)
    return Identity(
        seed=int(seed),
        shape=tuple(rng.uniform([0.9, 0.93, 0.93], [1.1, 1.07, 1.07]).round(4).tolist()),
        jaw_width=float(rng.uniform(0.85, 1.1)),
        nose_size=float(rng.uniform(0.8, 1.25)),
        skin=tuple(skin.round(4).tolist()),
        skin_noise_freq=float(rng.uniform(8, 20)),
        skin_noise_amp=float(rng.uniform(0.02, 0.07)),
        freckles=float(rng.uniform(0, 1) ** 3),
        blush=float(rng.uniform(0, 0.12)),
        lip_color=tuple(lip.round(4).tolist()),
        eye_spacing=float(rng.uniform(0.19, 0.23)),
        eye_size=float(rng.uniform(0.9, 1.1)),
        iris=tuple(np.clip(_pick(rng, _IRIS) * rng.uniform(0.85, 1.15, 3), 0, 1).round(4).tolist()),
        brow_thickness=float(rng.uniform(0.018, 0.034)),
        brow_angle=float(rng.uniform(-12, 8)),
        hair_color=tuple(hair.round(4).tolist()),
        hair_style=style,
        hairline=float(rng.uniform(0.42, 0.62)),
        accessories=accessories,
        accessory_color=tuple(rng.uniform(0.05, 0.9, 3).round(4).tolist()),
        background=tuple(rng.uniform(0.25, 0.85, 3).round(4).tolist()),
        light_azimuth=float(rng.uniform(-45, 45)),
        light_elevation=float(rng.uniform(10, 45)),
        voice=Voice(
            f0=float(f0),
            rate=float(rng.uniform(0.85, 1.2)),
            formant_scale=float(formant_scale),
            breathiness=float(rng.uniform(0.02, 0.1)),
            intonation=float(rng.uniform(0.04, 0.12)),
        ),
        noise=Noise.sample(rng, 1.0),
    )
