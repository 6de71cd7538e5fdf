"""The photo style's image: a textured scene behind the person, lit by a coloured key light
with soft shadows, a tinted ambient fill and a rim light, then camera augmentations.

Soft shadows are analytic: a shadow ray towards the key light is darkened by each
occluding ellipsoid by how near it passes to that ellipsoid, with a penumbra that widens
with distance (the light's apparent size), so one ray per pixel gives soft edges and the
cost stays one vectorised pass per occluder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import camera, raycast
from .photo_head import build_photo_scene
from .photo_identity import PhotoLook, noise32

BACKDROP_Z = -2.6  # the scene's wall, in the world, behind the head


@dataclass(frozen=True)
class Augment:
    """Per-clip camera response: exposure, white balance, gamma, contrast, vignette, grain."""

    gain: float = 1.0
    white_balance: tuple = (1.0, 1.0, 1.0)
    gamma: float = 1.0
    contrast: float = 1.0
    vignette: float = 0.0
    grain: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Augment:
        return cls(
            gain=float(rng.uniform(0.85, 1.15)),
            white_balance=tuple(rng.uniform(0.93, 1.07, 3).round(4).tolist()),
            gamma=float(rng.uniform(0.9, 1.1)),
            contrast=float(rng.uniform(0.9, 1.12)),
            vignette=float(rng.uniform(0.0, 0.35)),
            grain=float(rng.uniform(0.0, 0.012)),
        )

    def as_array(self) -> np.ndarray:
        """(8,) gain, white balance (3), gamma, contrast, vignette, grain."""
        return np.array([self.gain, *self.white_balance, self.gamma, self.contrast, self.vignette, self.grain])

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) float in [0, 1] -> the same, as this camera would record it."""
        h, w, _ = image.shape
        x = image * (self.gain * np.asarray(self.white_balance))
        x = np.clip(x, 0.0, 1.0) ** self.gamma
        x = (x - 0.5) * self.contrast + 0.5
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx + 0.5) / w - 0.5) ** 2 + ((yy + 0.5) / h - 0.5) ** 2
        x = x * (1.0 - self.vignette * 2.0 * r2)[..., None]
        if self.grain > 0:
            x = x + rng.normal(0.0, self.grain, x.shape)
        return np.clip(x, 0.0, 1.0)


def _soft_layers(look: PhotoLook):
    """Blurred shapes of the scene: (kind, centre x, y, size x, y, softness, alpha, colour)."""
    rng = np.random.default_rng([0xBAC, look.scene_seed])
    n = look.scene_blobs
    kinds = rng.random(n) < (0.5 if look.scene == "indoor" else 0.1)  # True: a rectangle
    centres = rng.uniform([-3.5, -2.5], [3.5, 2.8], (n, 2))
    sizes = rng.uniform(0.15, 0.9, (n, 2))
    soft = rng.uniform(0.05, 0.4, n)
    alpha = rng.uniform(0.25, 0.8, n)
    colours = rng.uniform(0.05, 1.0, (n, 3))
    return kinds, centres, sizes, soft, alpha, colours


def backdrop(look: PhotoLook, o_world: np.ndarray, d_world: np.ndarray) -> np.ndarray:
    """Colour (N, 3) of the scene seen along world rays: a wall with gradients, noise and
    blurred shapes (rays that miss the wall see it as if from far away)."""
    dz = d_world[:, 2]
    t = np.where(dz < -1e-3, (BACKDROP_Z - o_world[:, 2]) / np.minimum(dz, -1e-3), 20.0)
    p = o_world + t[:, None] * d_world
    x, y = p[:, 0], p[:, 1]
    c0, c1, c2 = (np.asarray(c) for c in look.scene_colors)
    if look.scene == "studio":
        g = np.clip(np.sqrt(x**2 + (y - 0.3) ** 2) / 3.5, 0.0, 1.0)[:, None]
        col = (1 - g) * c0 + g * (0.6 * c1)
    elif look.scene == "indoor":
        g = np.clip((y + 2.5) / 5.5, 0.0, 1.0)[:, None]
        col = (1 - g) * c1 + g * c0
    else:  # outdoor: sky above a horizon, foliage-like noise below
        horizon = 0.2 + 0.3 * noise32(look.scene_noise, p * 0.3)[:, None]
        sky = np.array([0.62, 0.75, 0.92]) * (0.8 + 0.2 * c0)
        ground = c1 * np.array([0.6, 1.0, 0.6]) * (0.75 + 0.25 * noise32(look.scene_noise, p * 4.0)[:, None])
        w = 1.0 / (1.0 + np.exp(-(y[:, None] - horizon) / 0.25))
        col = w * sky + (1 - w) * ground
    col = (
        col * (1.0 + 0.12 * noise32(look.scene_noise, p)[:, None])
        + 0.08 * noise32(look.scene_noise, p * 2.7 + 1.0)[:, None] * c2
    )
    kinds, centres, sizes, soft, alpha, colours = _soft_layers(look)
    for k in range(len(alpha)):
        dx, dy = (x - centres[k, 0]) / sizes[k, 0], (y - centres[k, 1]) / sizes[k, 1]
        if kinds[k]:
            dist = np.maximum(np.abs(dx), np.abs(dy))
        else:
            dist = np.sqrt(dx * dx + dy * dy)
        a = alpha[k] / (1.0 + np.exp((dist - 1.0) / soft[k]))
        col = col * (1 - a[:, None]) + a[:, None] * colours[k]
    return np.clip(col, 0.0, 1.0)


_COARSE = 4  # the scene is smooth (and out of focus): shade every 4th pixel, interpolate the rest


def _upsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear (h, w, C) -> (h * factor, w * factor, C), pixel centres aligned."""
    h, w, _ = image.shape

    def axis(n):
        x = (np.arange(n * factor) + 0.5) / factor - 0.5
        i0 = np.clip(np.floor(x).astype(int), 0, n - 1)
        i1 = np.clip(i0 + 1, 0, n - 1)
        return i0, i1, np.clip(x - i0, 0.0, 1.0)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def _coarse_backdrop(look: PhotoLook, c2w, K, size: int, head_pose) -> np.ndarray:
    """The scene for every ray of a size x size image, (size^2, 3)."""
    f = _COARSE if size % _COARSE == 0 else 1
    Kc = K.copy()
    Kc[:2] /= f
    o, d = camera.rays(c2w, Kc, size // f, size // f)
    rot, trans = head_pose[:3, :3], head_pose[:3, 3]
    coarse = backdrop(look, o @ rot.T + trans, d @ rot.T).reshape(size // f, size // f, 3)
    return _upsample(coarse, f).reshape(-1, 3)


def _shadow(prims, finishes, occluders, p, groups, light, softness):
    """Visibility of the key light (M,) at points ``p`` in shadow groups ``groups``."""
    vis = np.ones(p.shape[0])
    for j in occluders:
        prim, fin = prims[j], finishes[j]
        rec = np.flatnonzero(np.isin(groups, fin.casts_on))
        if rec.size == 0:
            continue
        rot = np.eye(3) if prim.rot is None else prim.rot
        a = ((p[rec] - prim.center) @ rot) / prim.radii
        b = (light @ rot) / prim.radii
        bb = b @ b
        t = -(a @ b) / bb
        q = a + t[:, None] * b
        dist = np.sqrt(np.einsum("ij,ij->i", q, q))
        outside = np.einsum("ij,ij->i", a, a) > 1.0
        width = softness * t * np.sqrt(bb) + 0.02
        occ = np.clip((1.0 + width - dist) / (2.0 * width), 0.0, 1.0)
        occ = np.where(outside & (t > 0), occ * occ * (3 - 2 * occ), 0.0)
        vis[rec] *= 1.0 - occ
    return vis


def shade(prims, finishes, bounds, look: PhotoLook, o, d, light, background):
    """Colour (N, 3) in [0, 1] and labels (N,) for rays (o, d) in head coordinates;
    ``bounds`` are ellipsoids that hold every primitive between them."""
    color = background.copy()
    labels = np.zeros(o.shape[0], np.uint8)
    t = np.full(o.shape[0], np.inf)
    which = np.full(o.shape[0], -1, np.int64)
    o32, d32 = o.astype(np.float32), d.astype(np.float32)
    live = np.zeros(o.shape[0], bool)
    for bound in bounds:  # rays that miss every bound are scene at once
        live |= np.isfinite(raycast._intersect(bound, o32, d32))
    live = np.flatnonzero(live)
    if live.size:
        t[live], which[live] = raycast.cast(prims, o32[live], d32[live])
    hit = np.flatnonzero(which >= 0)
    if hit.size == 0:
        return color, labels
    key_col, fill_col = np.asarray(look.key_color), np.asarray(look.fill_color)
    rim_dir = np.array([-light[0], 0.3, -abs(light[2]) - 0.5])
    rim_dir /= np.linalg.norm(rim_dir)
    p_all = o[hit] + t[hit, None].astype(np.float64) * d[hit]
    groups = np.array([finishes[i].group for i in which[hit]])
    occluders = [j for j, f in enumerate(finishes) if f.casts_on]
    visibility = _shadow(prims, finishes, occluders, p_all, groups, light, look.shadow_softness)
    for i, (prim, fin) in enumerate(zip(prims, finishes)):
        local = np.flatnonzero(which[hit] == i)
        if local.size == 0:
            continue
        sel = hit[local]
        p, v, dd = p_all[local], visibility[local], d[sel]
        n = raycast._normals(prims, i, p)
        if fin.bump is not None:
            n = n + fin.bump(p)
            n /= np.linalg.norm(n, axis=1, keepdims=True)
        n[np.einsum("ij,ij->i", n, dd) > 0] *= -1
        albedo = prim.material(p, n, dd)
        ndl = n @ light
        lambert = np.clip((ndl + fin.wrap) / (1.0 + fin.wrap), 0.0, 1.0) * v
        # Scattered light past the terminator is redder than direct light.
        scatter = np.clip(lambert - np.clip(ndl, 0.0, 1.0) * v, 0.0, 1.0)[:, None] * np.array([0.25, -0.1, -0.15])
        half = light[None, :] - dd
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        if fin.strand_root is not None:  # Kajiya-Kay: the highlight runs across the strands
            tangent = p - fin.strand_root
            tangent -= np.einsum("ij,ij->i", tangent, n)[:, None] * n
            tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
            th = np.einsum("ij,ij->i", tangent, half)
            spec = look.hair_shine * np.sqrt(np.clip(1 - th * th, 0.0, 1.0)) ** 60.0
        else:
            spec = prim.specular * np.clip(np.einsum("ij,ij->i", n, half), 0.0, 1.0) ** prim.shininess
        spec = spec * v * (ndl > 0)
        fill = look.fill_strength * (0.8 + 0.25 * n[:, 1])
        facing = 1.0 - np.abs(np.einsum("ij,ij->i", n, dd))
        rim = look.rim_strength * np.clip(n @ rim_dir, 0.0, 1.0) * facing**2
        diffuse = (look.key_strength * lambert)[:, None] * (key_col + scatter) + fill[:, None] * fill_col
        shaded = albedo * diffuse * fin.occlusion + (spec + rim)[:, None] * key_col * fin.occlusion
        color[sel] = shaded
        labels[sel] = prim.label
    return np.clip(color, 0.0, 1.0), labels


def render_view(
    ident,
    look: PhotoLook,
    state,
    head_pose: np.ndarray,
    c2w: np.ndarray,
    K: np.ndarray,
    size: int,
    light_world: np.ndarray,
    supersample: int = 1,
    augment: Augment = Augment(),
    grain_seed=(0,),
):
    """One photo-style image (size, size, 3) uint8 and its labels (size, size) uint8.

    ``c2w`` is camera-to-head and ``head_pose`` head-to-world, as in a clip's meta; the
    light, body and scene stay in the world.
    """
    s = int(supersample)
    Ks = K.astype(np.float64).copy()
    Ks[:2] *= s
    o, d = camera.rays(c2w, Ks, size * s, size * s)
    rot = head_pose[:3, :3]
    background = _coarse_backdrop(look, c2w, Ks, size * s, head_pose)
    light = rot.T @ np.asarray(light_world, np.float64)
    light = light / np.linalg.norm(light)
    prims, finishes, bounds = build_photo_scene(ident, look, state, head_pose)
    color, labels = shade(prims, finishes, bounds, look, o, d, light, background)
    color = color.reshape(size, s, size, s, 3).mean((1, 3))
    labels = labels.reshape(size, s, size, s)[:, s // 2, :, s // 2]
    color = augment.apply(color, np.random.default_rng(list(grain_seed)))
    return np.round(color * 255.0).astype(np.uint8), labels
