"""The photo style's person: the classic face restyled (pores, oily skin, separated teeth
with gums), hair with volume, and a body (shoulders, clothes, collar) that stays in the
world while the head turns above it.

Labels keep their meaning: 1 the head the field models (skin, neck, hair, eyes,
accessories), 2 lips, 3 the mouth interior (cavity, teeth, tongue). The body and the
scene are 0: they do not move with the head, so the model takes them from the source
frame's background, as it does for a real video's torso.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import head
from .head import FACE, FrameState
from .identity import Identity
from .photo_identity import PhotoLook, noise32
from .raycast import Ellipsoid

# Shadow groups: an occluder darkens receivers of the groups it casts on, never its own.
SKIN, NECK, NOSE, EYE, MOUTH_IN, HAIR, BODY, OTHER = range(8)
BODY_LABEL = 0


@dataclass(frozen=True)
class Finish:
    """How a primitive takes light beyond its albedo."""

    group: int = OTHER
    casts_on: tuple = ()  # groups it shadows
    wrap: float = 0.0  # light wrapping past the terminator (skin scatters light)
    occlusion: float = 1.0  # ambient and key scale (inside the mouth is dim)
    bump: Optional[Callable[[np.ndarray], np.ndarray]] = None  # (M, 3) points -> normal perturbation
    strand_root: Optional[np.ndarray] = None  # hair: strands run away from this point


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _noise_gradient(noise, p: np.ndarray) -> np.ndarray:
    """Unit-frequency gradient of a plane-wave noise: the direction its bumps lean."""
    unit = noise.waves / np.linalg.norm(noise.waves, axis=1, keepdims=True)
    return np.cos(p @ noise.waves.T + noise.phases) @ unit * (np.sqrt(2.0) / len(noise.phases))


def _skin(base, look: PhotoLook, ident: Identity):
    pores_noise, mottle_noise = look.skin_noise, ident.noise
    tint = np.array([0.6, -0.35, -0.45])

    def material(p, n, d):
        albedo = base(p, n, d)
        pores = _smoothstep(0.55, 1.1, noise32(pores_noise, p))
        mottle = noise32(mottle_noise, p * 35.0 + 5.0)
        albedo = albedo * (1.0 - look.pore_amp * pores)[:, None]
        return np.clip(albedo * (1.0 + look.mottle_amp * mottle[:, None] * tint), 0.0, 1.0)

    return material


def _teeth(base, edge_y: float, gum_side: float):
    """Separated teeth (dark seams every tooth width) and a band of gum beyond ``edge_y``."""
    gum = np.array([0.78, 0.42, 0.44])

    def material(p, n, d):
        col = base(p, n, d)
        s = p[:, 0] / 0.027
        seam = np.exp(-((s - np.round(s)) ** 2) / (2 * 0.07**2))
        col = col * (1.0 - 0.45 * seam)[:, None]
        beyond = gum_side * (p[:, 1] - edge_y) > 0.017
        col[beyond] = gum
        return col

    return material


def _hair_keep(ident: Identity, look: PhotoLook, cc, cr):
    """Hair grows above a line that runs low at the back and along the sides of long styles
    and at the hairline over the face."""
    front = ident.hairline
    back = {"buzz": -0.1, "short": -0.2, "bob": -0.75, "long": -0.95, "curly": -0.55, "bun": -0.25}[look.hair_style]
    side = back if look.hair_style in ("bob", "long", "curly") else front - 0.35
    ref = cr * 1.07

    def keep(p):
        q = (p - cc) / ref
        front_line = front + (side - front) * _smoothstep(0.62, 0.95, np.abs(q[:, 0]))
        thr = back + (front_line - back) * _smoothstep(-0.3, 0.45, q[:, 2])
        return q[:, 1] > thr

    return keep


def photo_hair(ident: Identity, look: PhotoLook, cc, cr, material) -> list:
    style, vol = look.hair_style, look.hair_volume
    keep = _hair_keep(ident, look, cc, cr)
    prims = [Ellipsoid(cc, cr * (1.03 + 0.02 * vol), material, FACE, keep=keep, name="hair")]
    if style == "buzz":
        return prims
    prims.append(
        Ellipsoid(
            cc + np.array([0.0, 0.05 * vol, -0.04 * vol]),
            cr * np.array([1.06 + 0.12 * vol, 1.04 + 0.1 * vol, 1.07 + 0.1 * vol]),
            material,
            FACE,
            keep=keep,
            name="hair",
        )
    )
    # Clumps on the scalp break the silhouette into locks.
    rng = np.random.default_rng([0xC1, ident.seed])
    n = look.hair_clumps
    az = rng.uniform(0, 2 * np.pi, 6 * n)
    el = np.arcsin(rng.uniform(-0.6, 0.97, 6 * n))
    dirs = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1)
    centres = cc + dirs * cr * (0.88 + 0.08 * vol)
    centres = centres[keep(centres)][:n]
    small = style == "curly"
    radii = (0.16 if small else 0.24) + 0.1 * vol
    scales = rng.uniform(0.8, 1.25, (len(centres), 3))
    for c, s in zip(centres, scales):
        prims.append(Ellipsoid(c, radii * s, material, FACE, keep=keep, name="hair"))
    sx = cr[0]
    if style in ("bob", "long", "curly"):
        drop = {"bob": 0.42, "long": 0.6, "curly": 0.45}[style]
        for side in (-1.0, 1.0):
            prims.append(
                Ellipsoid(
                    np.array([side * 0.9 * sx, 0.08 - 0.5 * drop, -0.05]),
                    np.array([0.12 + 0.06 * vol, drop, 0.45]),
                    material,
                    FACE,
                    keep=keep,
                    name="hair",
                )
            )
        prims.append(
            Ellipsoid(
                np.array([0.0, -0.1 - 0.5 * drop, -0.3]),
                np.array([0.66 + 0.08 * vol, 0.35 + drop, 0.36]),
                material,
                FACE,
                keep=lambda p: keep(p) & (p[:, 2] < 0.05),
                name="hair",
            )
        )
    if style == "bun":
        prims.append(Ellipsoid(np.array([0.0, 0.55, -0.52]), np.full(3, 0.2), material, FACE, name="hair"))
    return prims


def _hair_material(ident: Identity, look: PhotoLook):
    col = np.asarray(ident.hair_color)
    noise = look.hair_noise
    curly = look.hair_style == "curly"

    def material(p, n, d):
        ang = np.arctan2(p[:, 0], p[:, 2] + 0.2)
        warp = noise32(noise, p * 3.0) * 3.0 if curly else noise32(noise, p)
        strands = 0.76 + 0.24 * np.sin(ang * 140.0 + 5.0 * warp)
        return col * (strands * (0.85 + 0.15 * noise32(noise, p * 2.3 + 1.0)))[:, None]

    return material


def _cloth(look: PhotoLook, to_world):
    base, accent = np.asarray(look.clothing), np.asarray(look.clothing_accent)
    noise = look.cloth_noise

    def material(p, n, d):
        w = to_world(p)
        col = np.broadcast_to(base, p.shape).copy()
        if look.clothing_pattern == "stripes":
            on = np.sin(w[:, 1] * 40.0) > 0.3
            col[on] = 0.5 * (base + accent)
        elif look.clothing_pattern == "checks":
            on = (np.sin(w[:, 0] * 22.0) > 0) ^ (np.sin(w[:, 1] * 22.0) > 0)
            col[on] = 0.7 * base + 0.3 * accent
        folds = 1.0 + 0.12 * noise32(noise, w) + 0.04 * np.sin(w[:, 0] * 300.0) * np.sin(w[:, 1] * 300.0)
        return np.clip(col * folds[:, None], 0.0, 1.0)

    return material


def body(look: PhotoLook, head_pose: np.ndarray) -> list:
    """Torso, shoulders and a collar in the world, expressed in this frame's head coordinates."""
    rot, t = head_pose[:3, :3], head_pose[:3, 3]
    inv_rot = rot.T

    def to_world(p):
        return p @ rot.T + t

    def placed(centre, radii, material):
        centre_head = inv_rot @ (np.asarray(centre) - t)
        return Ellipsoid(centre_head, np.asarray(radii), material, BODY_LABEL, rot=inv_rot, specular=0.03, name="body")

    b = look.body_scale
    cloth = _cloth(look, to_world)
    collar_col = np.asarray(look.clothing) * 0.8

    def collar(p, n, d):
        return np.broadcast_to(collar_col, p.shape).copy()

    prims = [
        placed([0.0, -1.72, -0.22], [1.3 * b, 0.8, 0.52], cloth),
        placed([-0.72 * b, -1.3, -0.2], [0.6 * b, 0.32, 0.4], cloth),
        placed([0.72 * b, -1.3, -0.2], [0.6 * b, 0.32, 0.4], cloth),
        placed([0.0, -1.0, -0.08], [0.36, 0.1, 0.33], collar),
    ]
    return prims


# Holds the head, its hair at full volume and the neck (the torso bounds itself).
_HEAD_BOUND = Ellipsoid(np.array([0.0, -0.15, -0.1]), np.array([1.1, 1.4, 1.15]), None, 0)


def build_photo_scene(ident: Identity, look: PhotoLook, state: FrameState, head_pose: np.ndarray):
    """(primitives, finishes, bounds) in head coordinates for one frame: ``bounds`` are
    ellipsoids that hold every primitive between them."""
    parts, _, cc, cr = head.face_parts(ident, state)
    half_h, _, my, _ = head.mouth_geometry(state)
    pores = look.skin_noise

    def bump(p):
        return 0.12 * _noise_gradient(pores, p)

    prims, finishes = [], []
    for prim in parts:
        name = prim.name
        if name in ("cranium", "jaw", "chin", "nose", "neck", "ear"):
            prim = dataclasses.replace(
                prim, material=_skin(prim.material, look, ident), specular=look.skin_oil, shininess=look.skin_gloss
            )
            group = {"neck": NECK, "nose": NOSE}.get(name, SKIN)
            casts = {"nose": (SKIN, EYE), "jaw": (NECK, BODY), "chin": (NECK, BODY), "neck": (BODY,)}.get(name, ())
            finish = Finish(group=group, casts_on=casts, wrap=0.35, bump=bump)
        elif name == "lips":
            prim = dataclasses.replace(prim, specular=0.1 + look.skin_oil, shininess=45.0)
            finish = Finish(group=SKIN, wrap=0.3)
        elif name == "upper_teeth":
            prim = dataclasses.replace(prim, material=_teeth(prim.material, my + half_h + 0.004, 1.0))
            finish = Finish(group=MOUTH_IN, occlusion=0.8)
        elif name == "lower_teeth":
            prim = dataclasses.replace(prim, material=_teeth(prim.material, my - half_h - 0.004, -1.0))
            finish = Finish(group=MOUTH_IN, occlusion=0.7)
        elif name in ("cavity", "tongue"):
            finish = Finish(group=MOUTH_IN, occlusion=0.6)
        elif name == "eye":
            finish = Finish(group=EYE, occlusion=0.85)
        else:  # brows
            finish = Finish(group=OTHER)
        prims.append(prim)
        finishes.append(finish)
    crown = cc + np.array([0.0, cr[1] * 0.9, -0.1])
    hair = photo_hair(ident, look, cc, cr, _hair_material(ident, look))
    prims += hair
    finishes += [Finish(group=HAIR, casts_on=(SKIN, EYE, NECK, BODY), strand_root=crown)] * len(hair)
    accessories = head._accessories(ident, cc, cr, ident.eye_spacing, ident.shape[2])
    prims += accessories
    finishes += [Finish(group=OTHER, casts_on=(SKIN,))] * len(accessories)
    torso = body(look, head_pose)
    prims += torso
    finishes += [Finish(group=BODY)] * len(torso)
    return prims, finishes, [_HEAD_BOUND, torso[0], torso[1], torso[2]]
