"""The SynthTalk head: an identity plus one frame's state -> ellipsoid primitives.

Head coordinates (docs/design.md section 5a): origin at the head centre, +y up, the face looking along
+z, the head about 0.7 units in radius inside the NeRF box [-1, 1]^3.

The mouth is real geometry: jaw opening lowers the chin and the lower lip and cuts a
lens-shaped opening through face and lips, behind which sit a cavity (seen from inside),
upper and lower teeth and a tongue. Lip width and rounding change the opening's width,
and rounding pushes the lips forward. Eyes are eyeballs behind almond openings in the
skin whose height closes with a blink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import rotation
from .identity import Identity
from .raycast import Ellipsoid

FACE, LIPS, MOUTH = 1, 2, 3
MOUTH_Y = -0.33  # rest height of the mouth centre
EYE_Y = 0.10


@dataclass
class FrameState:
    jaw: float = 0.0  # viseme: jaw opening in [0, 1]
    width: float = 0.5  # viseme: lip width in [0, 1]
    rounding: float = 0.0  # viseme: lip rounding in [0, 1]
    blink: float = 0.0  # eyelid closure in [0, 1]
    gaze: tuple = (0.0, 0.0)  # eye yaw, pitch in degrees


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def mouth_geometry(state: FrameState):
    """Opening half-height, half-width, centre height and lip protrusion."""
    half_h = 0.004 + 0.085 * state.jaw * (1.0 - 0.25 * state.rounding)
    half_w = 0.085 + 0.07 * state.width - 0.035 * state.rounding
    centre_y = MOUTH_Y - 0.55 * half_h  # the lower lip travels with the jaw, the upper lip little
    protrusion = 0.035 * state.rounding
    return half_h, half_w, centre_y, protrusion


def build_head(ident: Identity, state: FrameState) -> list:
    prims, hair_material, cranium_c, cranium_r = face_parts(ident, state)
    prims += _hair(ident, cranium_c, cranium_r, hair_material)
    prims += _accessories(ident, cranium_c, cranium_r, ident.eye_spacing, ident.shape[2])
    return prims


def face_parts(ident: Identity, state: FrameState):
    """Everything but hair and accessories: skin, mouth (cavity, teeth, tongue), eyes, brows,
    ears, each primitive named; also the hair material and the cranium (centre, radii) the
    hair is fitted to."""
    sx, sy, sz = ident.shape
    skin = np.asarray(ident.skin)
    noise = ident.noise
    es = ident.eye_spacing
    half_h, half_w, my, protrude = mouth_geometry(state)
    eye_h = 0.042 * ident.eye_size * (1.0 - state.blink) + 1e-4
    eye_w = 0.085 * ident.eye_size

    def mouth_lens(p):
        """Inside the mouth opening (a lens, pointed at the corners), front of the head."""
        u = np.clip(np.abs(p[:, 0]) / half_w, 0, 1)
        return (np.abs(p[:, 0]) < half_w) & (np.abs(p[:, 1] - my) < half_h * (1 - u**2) ** 0.6) & (p[:, 2] > 0.3)

    def eye_lens(p):
        d = np.minimum(np.abs(p[:, 0] - es), np.abs(p[:, 0] + es))
        u = np.clip(d / eye_w, 0, 1)
        # Almond: the upper lid arches more than the lower.
        dy = p[:, 1] - EYE_Y
        lid = np.where(dy > 0, eye_h * 1.15, eye_h * 0.75) * (1 - u**2) ** 0.8
        return (d < eye_w) & (np.abs(dy) < lid) & (p[:, 2] > 0.3)

    def eye_rim(p):
        d = np.minimum(np.abs(p[:, 0] - es), np.abs(p[:, 0] + es))
        dy = p[:, 1] - EYE_Y
        r = (d / (eye_w * 1.12)) ** 2 + (dy / (eye_h * 1.6 + 0.01)) ** 2
        return (r < 1.0) & (p[:, 2] > 0.3) & (dy > -0.01)

    def skin_material(p, n, d):
        albedo = skin * (1.0 + ident.skin_noise_amp * noise(p * ident.skin_noise_freq))[:, None]
        if ident.freckles > 0.05:
            spots = noise(p * 60.0 + 3.0) > 1.2 - 0.5 * ident.freckles
            cheeks = (p[:, 1] < 0.12) & (p[:, 1] > -0.25) & (p[:, 2] > 0.35)
            albedo[spots & cheeks] *= np.array([0.82, 0.7, 0.62])
        # Blush on the cheeks; slightly redder, darker skin around the mouth and nose.
        for cx in (-0.28, 0.28):
            w = np.exp(-((p[:, 0] - cx) ** 2 + (p[:, 1] + 0.12) ** 2 + (p[:, 2] - 0.5) ** 2) / 0.012)
            albedo = albedo * (1 - ident.blush * w)[:, None] + ident.blush * w[:, None] * np.array([0.85, 0.35, 0.35])
        # Lash line: a dark rim along the upper eyelid.
        albedo[eye_rim(p)] *= 0.35
        return albedo

    def flat(color):
        color = np.asarray(color, np.float64)
        return lambda p, n, d: np.broadcast_to(color, p.shape).copy()

    hair_col = np.asarray(ident.hair_color)

    def hair_material(p, n, d):
        # Strands: fine stripes running down from the crown, plus a little noise.
        ang = np.arctan2(p[:, 0], p[:, 2] + 0.2)
        stripes = 0.85 + 0.15 * np.sin(ang * 90.0 + 4.0 * noise(p * 6.0))
        return hair_col * stripes[:, None]

    def lips_material(p, n, d):
        col = np.asarray(ident.lip_color) * (1.0 + 0.05 * np.sin(p[:, 0] * 300.0))[:, None]
        # Darker where the lips meet, so a closed mouth still reads as a mouth.
        seam = np.exp(-((p[:, 1] - my) ** 2) / (2 * (half_h + 0.006) ** 2))
        return col * (1 - 0.45 * seam)[:, None]

    def cavity_material(p, n, d):
        depth = np.clip((0.62 - p[:, 2]) / 0.3, 0, 1)
        return np.array([0.35, 0.08, 0.08]) * (1 - 0.7 * depth)[:, None]

    def eye_material(p, n, d):
        # Direction from each eyeball centre, rotated by the gaze: iris and pupil are caps.
        centre_x = np.where(p[:, 0] > 0, es, -es)
        v = p - np.stack([centre_x, np.full_like(centre_x, EYE_Y), np.full_like(centre_x, eye_z)], 1)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        cos = v @ gaze_dir
        col = np.broadcast_to(np.array([0.93, 0.92, 0.88]), p.shape).copy()
        iris = cos > np.cos(0.48)
        ring = 0.75 + 0.25 * np.sin(np.arctan2(v[:, 1], v[:, 0]) * 24.0)
        col[iris] = np.asarray(ident.iris) * ring[iris, None]
        col[cos > np.cos(0.2)] = 0.03
        return col

    eye_z = 0.5 * sz + 0.005
    gaze_dir = rotation(state.gaze[0], state.gaze[1], 0.0)[:, 2]

    cranium_c = np.array([0.0, 0.12, -0.04])
    cranium_r = np.array([0.60 * sx, 0.66 * sy, 0.68 * sz])
    chin_drop = 0.09 * state.jaw

    def not_mouth_or_eyes(p):
        return ~(mouth_lens(p) | eye_lens(p))

    prims = [
        Ellipsoid(cranium_c, cranium_r, skin_material, FACE, keep=not_mouth_or_eyes, blend=True, name="cranium"),
        Ellipsoid(
            np.array([0.0, -0.18, 0.10 * sz]),
            np.array([0.50 * sx * ident.jaw_width, 0.52 * sy, 0.55 * sz]),
            skin_material,
            FACE,
            keep=not_mouth_or_eyes,
            blend=True,
            name="jaw",
        ),
        Ellipsoid(
            np.array([0.0, -0.42 - chin_drop, 0.22 * sz]),
            np.array([0.30 * ident.jaw_width, 0.22, 0.38 * sz]),
            skin_material,
            FACE,
            keep=not_mouth_or_eyes,
            blend=True,
            name="chin",
        ),
        Ellipsoid(
            np.array([0.0, -0.08, 0.66 * sz]),
            np.array([0.075, 0.15, 0.11]) * ident.nose_size,
            skin_material,
            FACE,
            rot=rotation(0, -18, 0),
            name="nose",
        ),
        Ellipsoid(
            np.array([0.0, -0.80, -0.08]),
            np.array([0.27, 0.42, 0.27]) * sx,
            skin_material,
            FACE,
            blend=True,
            name="neck",
        ),
        # Lips: a ring around the opening, pushed forward by rounding.
        Ellipsoid(
            np.array([0.0, my, 0.585 * sz + protrude]),
            np.array([half_w * 1.18 + 0.02, 0.045 + half_h, 0.085]),
            lips_material,
            LIPS,
            keep=lambda p: ~mouth_lens(p),
            specular=0.15,
            shininess=30,
            name="lips",
        ),
        Ellipsoid(
            np.array([0.0, my, 0.42 * sz]),
            np.array([half_w + 0.05, half_h + 0.08, 0.22]),
            cavity_material,
            MOUTH,
            back_only=True,
            specular=0.0,
            name="cavity",
        ),
        Ellipsoid(
            np.array([0.0, my + half_h + 0.004, 0.545 * sz]),
            np.array([half_w * 0.85, 0.032, 0.06]),
            flat([0.94, 0.93, 0.86]),
            MOUTH,
            specular=0.25,
            shininess=40,
            name="upper_teeth",
        ),
        Ellipsoid(
            np.array([0.0, my - half_h - 0.004, 0.535 * sz]),
            np.array([half_w * 0.8, 0.028, 0.06]),
            flat([0.9, 0.89, 0.82]),
            MOUTH,
            specular=0.25,
            shininess=40,
            name="lower_teeth",
        ),
        Ellipsoid(
            np.array([0.0, my - half_h - 0.03, 0.47 * sz]),
            np.array([half_w * 0.8, 0.05, 0.12]),
            flat([0.72, 0.32, 0.33]),
            MOUTH,
            specular=0.2,
            name="tongue",
        ),
    ]
    for side in (-1.0, 1.0):
        prims += [
            Ellipsoid(
                np.array([side * es, EYE_Y, eye_z]),
                np.full(3, 0.095 * ident.eye_size),
                eye_material,
                FACE,
                specular=0.6,
                shininess=80,
                name="eye",
            ),
            Ellipsoid(
                np.array([side * es, EYE_Y + 0.125, 0.585 * sz]),
                np.array([0.10, ident.brow_thickness, 0.04]),
                hair_material,
                FACE,
                rot=rotation(0, 0, side * ident.brow_angle),
                name="brow",
            ),
            Ellipsoid(
                np.array([side * 0.60 * sx, 0.02, 0.0]), np.array([0.05, 0.14, 0.09]), skin_material, FACE, name="ear"
            ),
        ]
    return prims, hair_material, cranium_c, cranium_r


def _hair(ident, cranium_c, cranium_r, material):
    style = ident.hair_style
    front = ident.hairline
    back = {"short": -0.15, "crop": 0.05, "long": -0.8, "bun": -0.2}[style]
    shell_r = cranium_r * (1.07 if style != "crop" else 1.03)

    def keep(p):
        q = (p - cranium_c) / shell_r
        thr = back + (front - back) * _smoothstep(-0.3, 0.45, q[:, 2])
        # Leave the ears free on short styles.
        return q[:, 1] > thr

    prims = [Ellipsoid(cranium_c, shell_r, material, FACE, keep=keep)]
    if style == "long":
        prims.append(
            Ellipsoid(
                np.array([0.0, -0.45, -0.22]),
                np.array([0.62, 0.62, 0.42]),
                material,
                FACE,
                keep=lambda p: p[:, 2] < 0.05,
            )
        )
    if style == "bun":
        prims.append(Ellipsoid(np.array([0.0, 0.62, -0.42]), np.full(3, 0.2), material, FACE))
    return prims


def _accessories(ident, cranium_c, cranium_r, es, sz):
    color = np.asarray(ident.accessory_color)

    def flat(c):
        return lambda p, n, d: np.broadcast_to(np.asarray(c, np.float64), p.shape).copy()

    prims = []
    if "glasses" in ident.accessories:
        z = 0.69 * sz
        for side in (-1.0, 1.0):
            centre = np.array([side * es, EYE_Y, z])
            prims.append(
                Ellipsoid(
                    centre,
                    np.array([0.115, 0.08, 0.012]),
                    flat(color * 0.6),
                    FACE,
                    keep=lambda p, c=centre: ((p[:, 0] - c[0]) / 0.115) ** 2 + ((p[:, 1] - c[1]) / 0.08) ** 2 > 0.7,
                    specular=0.4,
                    shininess=60,
                )
            )
            # The temple arm runs from the rim's outer edge back to the ear.
            a = np.array([side * (es + 0.11), EYE_Y + 0.02, z - 0.02])
            b = np.array([side * 0.60 * ident.shape[0], EYE_Y, -0.02])
            mid, axis = 0.5 * (a + b), (b - a)
            length = np.linalg.norm(axis)
            yaw = np.degrees(np.arctan2(axis[0], axis[2]))
            prims.append(
                Ellipsoid(mid, np.array([0.01, 0.012, 0.5 * length]), flat(color * 0.6), FACE, rot=rotation(yaw, 0, 0))
            )
        prims.append(
            Ellipsoid(np.array([0.0, EYE_Y + 0.015, z]), np.array([es - 0.1, 0.011, 0.011]), flat(color * 0.6), FACE)
        )
    if "hat" in ident.accessories:
        hat_r = cranium_r * 1.13
        prims.append(
            Ellipsoid(
                cranium_c,
                hat_r,
                flat(color),
                FACE,
                keep=lambda p: (p[:, 1] - cranium_c[1]) / hat_r[1] > 0.38,
                specular=0.05,
            )
        )
        brim_y = cranium_c[1] + 0.38 * hat_r[1]
        prims.append(
            Ellipsoid(
                np.array([0.0, brim_y, 0.12]),
                np.array([0.72, 0.018, 0.80]),
                flat(color * 0.85),
                FACE,
                keep=lambda p: p[:, 2] > -0.1,
            )
        )
    if "earrings" in ident.accessories:
        for side in (-1.0, 1.0):
            prims.append(
                Ellipsoid(
                    np.array([side * 0.62 * ident.shape[0], -0.15, 0.02]),
                    np.full(3, 0.03),
                    flat([0.85, 0.68, 0.25]),
                    FACE,
                    specular=0.9,
                    shininess=60,
                )
            )
    return prims
