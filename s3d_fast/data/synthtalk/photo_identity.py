"""The photo style's look of an identity: hair volume, clothes, scene, lights, skin finish.

A photo identity is the classic identity of the same seed (face, voice, skin tone, eyes)
with its accessories redrawn (no hats, fewer glasses) and a :class:`PhotoLook` drawn from
a second, separate random stream, so the classic style's draws are untouched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .identity import Identity, Noise, sample_identity

PHOTO_HAIR_STYLES = ("buzz", "short", "bob", "long", "curly", "bun")
SCENES = ("studio", "indoor", "outdoor")
_GLASSES_P = 0.15
_EARRINGS_P = 0.25
# Light colours from warm tungsten to cool shade (linear multipliers, about unit luminance).
_WARM = np.array([1.12, 0.98, 0.80])
_COOL = np.array([0.86, 0.97, 1.16])


@dataclass
class PhotoLook:
    hair_style: str
    hair_volume: float  # 0 flat .. 1 big
    hair_clumps: int
    hair_shine: float
    skin_oil: float  # specular strength of the skin
    skin_gloss: float  # Blinn exponent of the skin
    pore_amp: float
    mottle_amp: float
    clothing: tuple[float, float, float]
    clothing_pattern: str  # plain, stripes, checks
    clothing_accent: tuple[float, float, float]
    body_scale: float
    scene: str
    scene_colors: tuple  # 3 colours (lists) of the backdrop
    scene_blobs: int
    key_color: tuple[float, float, float]
    fill_color: tuple[float, float, float]  # the colour cast of the ambient light
    key_strength: float
    fill_strength: float
    rim_strength: float
    shadow_softness: float  # radians of the key light's apparent size
    hair_noise: Noise = field(repr=False, default=None)
    skin_noise: Noise = field(repr=False, default=None)
    cloth_noise: Noise = field(repr=False, default=None)
    scene_noise: Noise = field(repr=False, default=None)
    scene_seed: int = 0

    def summary(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("hair_noise", "skin_noise", "cloth_noise", "scene_noise"):
            d.pop(k)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def noise32(noise: Noise, p: np.ndarray) -> np.ndarray:
    """``noise(p)`` in float32: the photo style's many texture lookups at half the cost."""
    arg = p.astype(np.float32) @ noise.waves.T.astype(np.float32) + noise.phases.astype(np.float32)
    return np.sin(arg).mean(1) * np.float32(np.sqrt(2.0))


def _light_colour(rng) -> np.ndarray:
    t = rng.uniform(0, 1)
    return (1 - t) * _WARM + t * _COOL


def sample_photo_identity(seed: int) -> tuple[Identity, PhotoLook]:
    ident = sample_identity(seed)
    rng = np.random.default_rng([0x5EED, 0xF070, int(seed)])
    accessories = []
    if rng.random() < _GLASSES_P:
        accessories.append("glasses")
    if rng.random() < _EARRINGS_P:
        accessories.append("earrings")
    style = str(rng.choice(PHOTO_HAIR_STYLES, p=[0.08, 0.24, 0.18, 0.22, 0.16, 0.12]))
    ident = dataclasses.replace(ident, accessories=accessories, hair_style=style)
    key = _light_colour(rng)
    # The ambient light often leans the other way (warm key, bluish sky fill), sometimes green/magenta.
    fill = np.clip(2.0 - key + rng.normal(0, 0.05, 3), 0.75, 1.3)
    clothing = rng.uniform(0.05, 0.85, 3) * rng.uniform(0.4, 1.0)
    look = PhotoLook(
        hair_style=style,
        hair_volume=float(rng.uniform(0.0, 0.4) if style in ("buzz", "short") else rng.uniform(0.4, 1.0)),
        hair_clumps=int(rng.integers(3, 7) if style != "curly" else rng.integers(8, 13)),
        hair_shine=float(rng.uniform(0.15, 0.5)),
        skin_oil=float(rng.uniform(0.08, 0.35)),
        skin_gloss=float(rng.uniform(18, 60)),
        pore_amp=float(rng.uniform(0.04, 0.12)),
        mottle_amp=float(rng.uniform(0.03, 0.09)),
        clothing=tuple(clothing.round(4).tolist()),
        clothing_pattern=str(rng.choice(["plain", "stripes", "checks"], p=[0.55, 0.3, 0.15])),
        clothing_accent=tuple(rng.uniform(0.05, 0.95, 3).round(4).tolist()),
        body_scale=float(rng.uniform(0.9, 1.1)),
        scene=str(rng.choice(SCENES)),
        scene_colors=tuple(rng.uniform(0.08, 0.9, (3, 3)).round(4).tolist()),
        scene_blobs=int(rng.integers(4, 12)),
        key_color=tuple(key.round(4).tolist()),
        fill_color=tuple(fill.round(4).tolist()),
        key_strength=float(rng.uniform(0.6, 0.95)),
        fill_strength=float(rng.uniform(0.22, 0.42)),
        rim_strength=float(rng.uniform(0.0, 0.5)),
        shadow_softness=float(rng.uniform(0.05, 0.25)),
        hair_noise=Noise.sample(rng, 14.0, 12),
        skin_noise=Noise.sample(rng, 260.0, 12),
        cloth_noise=Noise.sample(rng, 4.0, 8),
        scene_noise=Noise.sample(rng, 1.2, 10),
        scene_seed=int(rng.integers(2**31)),
    )
    return ident, look
