"""Vectorised ray casting of clipped ellipsoids, with shading and label masks.

A scene is a list of :class:`Ellipsoid` primitives. Each may carry a ``keep`` predicate
on the hit point (head coordinates) that cuts it open - the mouth opening through the
face and lips, the eye openings, a hair line, a glasses rim - so a ray passes through a
cut-away near surface and may hit the primitive's far side or whatever lies behind.
``back_only`` primitives (the mouth cavity) are seen only from the inside. All rays of an
image are intersected with one primitive at a time in numpy, so cost is
O(primitives x rays) with no Python loop over pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

Material = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (p, q, n) -> albedo (M, 3)


@dataclass
class Ellipsoid:
    center: np.ndarray  # (3,)
    radii: np.ndarray  # (3,)
    material: Material
    label: int  # 1 face, 2 lips, 3 mouth interior
    rot: Optional[np.ndarray] = None  # (3, 3): columns are the local axes
    keep: Optional[Callable[[np.ndarray], np.ndarray]] = None  # (M, 3) head points -> bool
    back_only: bool = False
    specular: float = 0.08
    shininess: float = 20.0


def _intersect(prim: Ellipsoid, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest accepted hit distance per ray (inf where none)."""
    rot = np.eye(3) if prim.rot is None else prim.rot
    ol = ((o - prim.center) @ rot) / prim.radii
    dl = (d @ rot) / prim.radii
    a = np.einsum("ij,ij->i", dl, dl)
    b = np.einsum("ij,ij->i", ol, dl)
    c = np.einsum("ij,ij->i", ol, ol) - 1.0
    disc = b * b - a * c
    t = np.full(o.shape[0], np.inf)
    hit = disc > 0
    if not hit.any():
        return t
    idx = np.flatnonzero(hit)
    sq = np.sqrt(disc[idx])
    t_near = (-b[idx] - sq) / a[idx]
    t_far = (-b[idx] + sq) / a[idx]
    best = np.full(idx.shape[0], np.inf)
    # Try the far hit first, then let an accepted near hit override it.
    for cand, allowed in ((t_far, True), (t_near, not prim.back_only)):
        if not allowed:
            continue
        ok = cand > 1e-4
        if prim.keep is not None and ok.any():
            pts = o[idx[ok]] + cand[ok, None] * d[idx[ok]]
            sub = prim.keep(pts)
            ok[np.flatnonzero(ok)[~sub]] = False
        best = np.where(ok, cand, best)
    t[idx] = best
    return t


def _normals(prim: Ellipsoid, p: np.ndarray) -> np.ndarray:
    rot = np.eye(3) if prim.rot is None else prim.rot
    local = ((p - prim.center) @ rot) / prim.radii
    n = (local / prim.radii) @ rot.T  # gradient of |local|^2, back in head coordinates
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def cast(prims: List[Ellipsoid], o: np.ndarray, d: np.ndarray):
    """(t, primitive index) per ray; index -1 where nothing is hit."""
    t = np.full(o.shape[0], np.inf)
    which = np.full(o.shape[0], -1, np.int64)
    for i, prim in enumerate(prims):
        ti = _intersect(prim, o, d)
        closer = ti < t
        t[closer] = ti[closer]
        which[closer] = i
    return t, which


def render(
    prims: List[Ellipsoid],
    origins: np.ndarray,
    dirs: np.ndarray,
    light_dir: np.ndarray,
    background: np.ndarray,
    bound_center=(0.0, -0.25, 0.0),
    bound_radii=(1.05, 1.45, 1.1),
):
    """Shade rays: returns colour (N, 3) float in [0, 1] and labels (N,) uint8.

    Rays that miss a bounding ellipsoid around head and neck are background at once.
    """
    n_rays = origins.shape[0]
    color = np.broadcast_to(np.asarray(background, np.float64), (n_rays, 3)).copy()
    labels = np.zeros(n_rays, np.uint8)
    box = Ellipsoid(np.asarray(bound_center), np.asarray(bound_radii), None, 0)
    live = np.flatnonzero(np.isfinite(_intersect(box, origins, dirs)))
    if live.size == 0:
        return color, labels
    o, d = origins[live], dirs[live]
    t, which = cast(prims, o, d)
    light = np.asarray(light_dir, np.float64)
    light = light / np.linalg.norm(light)
    for i, prim in enumerate(prims):
        sel = np.flatnonzero(which == i)
        if sel.size == 0:
            continue
        p = o[sel] + t[sel, None] * d[sel]
        n = _normals(prim, p)
        # Seen from inside (cavity, cut shells): the visible side faces the viewer.
        flip = np.einsum("ij,ij->i", n, d[sel]) > 0
        n[flip] *= -1
        albedo = prim.material(p, n, d[sel])
        lambert = np.clip(n @ light, 0.0, 1.0)
        half = light[None, :] - d[sel]
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        spec = prim.specular * np.clip(np.einsum("ij,ij->i", n, half), 0.0, 1.0) ** prim.shininess
        # Sky-like fill from above plus the key light: soft, but with shape.
        fill = 0.30 + 0.12 * n[:, 1]
        shade = albedo * (fill + 0.75 * lambert)[:, None] + spec[:, None]
        color[live[sel]] = shade
        labels[live[sel]] = prim.label
    return np.clip(color, 0.0, 1.0), labels
