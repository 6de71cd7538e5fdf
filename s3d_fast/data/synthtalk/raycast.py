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
from typing import Callable, Optional

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
    blend: bool = False  # shade with normals blended across the other `blend` primitives
    name: str = ""  # the part it is ("jaw", "upper_teeth"): lets a style restyle parts


def _intersect(prim: Ellipsoid, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Nearest accepted hit distance per ray (inf where none)."""
    dt = o.dtype
    radii = prim.radii.astype(dt)
    if prim.rot is None:  # axis-aligned: skip the rotation products
        ol = (o - prim.center.astype(dt)) / radii
        dl = d / radii
    else:
        rot = prim.rot.astype(dt)
        ol = ((o - prim.center.astype(dt)) @ rot) / radii
        dl = (d @ rot) / radii
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


def _implicit(prim: Ellipsoid, p: np.ndarray):
    """f = |local|^2 - 1 (0 on the surface) and its unit gradient, at points (M, 3)."""
    rot = np.eye(3) if prim.rot is None else prim.rot
    local = ((p - prim.center) @ rot) / prim.radii
    n = (local / prim.radii) @ rot.T  # gradient of |local|^2, back in head coordinates
    f = np.einsum("ij,ij->i", local, local) - 1.0
    return f, n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


_BLEND_WIDTH = 0.12


def _normals(prims: list[Ellipsoid], i: int, p: np.ndarray) -> np.ndarray:
    """Surface normal of primitive i; for `blend` primitives, a smooth blend with the others.

    Where two skin ellipsoids meet (cranium and jaw, say) their normals jump, which reads
    as a crease. Weighting each blend primitive's normal by how close the point is to its
    surface, exp(-(f / w)^2), rounds that crease off in shading without moving geometry.
    """
    _, n = _implicit(prims[i], p)
    if not prims[i].blend:
        return n
    total = n.copy()
    for j, other in enumerate(prims):
        if j != i and other.blend:
            f, nj = _implicit(other, p)
            total += np.exp(-((f / _BLEND_WIDTH) ** 2))[:, None] * nj
    return total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)


def _bounding_cones(prims: list[Ellipsoid], eye: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(N, P) bool: which rays from the common ``eye`` can hit each primitive.

    A primitive lies inside the sphere around its centre of radius max(radii); from a
    pinhole that sphere is a cone, so one (N, 3) x (3, P) product culls most ray /
    primitive pairs (the teeth cover a few hundred pixels, not the whole image).
    """
    centres = np.stack([p.center for p in prims]) - eye
    dist = np.linalg.norm(centres, axis=1)
    radius = np.array([np.max(p.radii) for p in prims]) * 1.001
    inside = dist <= radius
    cos_half = np.sqrt(np.clip(1.0 - (radius / np.maximum(dist, 1e-12)) ** 2, 0.0, 1.0))
    cos_half[inside] = -2.0  # the eye is inside the bound: every ray may hit
    return (d @ (centres / np.maximum(dist, 1e-12)[:, None]).T) >= cos_half[None, :]


def cast(prims: list[Ellipsoid], o: np.ndarray, d: np.ndarray):
    """(t, primitive index) per ray; index -1 where nothing is hit."""
    t = np.full(o.shape[0], np.inf)
    which = np.full(o.shape[0], -1, np.int64)
    pinhole = o.shape[0] > 0 and np.array_equal(o.min(0), o.max(0))
    cones = _bounding_cones(prims, o[0], d) if pinhole else None
    for i, prim in enumerate(prims):
        if cones is None:
            idx = np.arange(o.shape[0])
        else:
            idx = np.flatnonzero(cones[:, i])
            if idx.size == 0:
                continue
        ti = _intersect(prim, o[idx], d[idx])
        closer = ti < t[idx]
        t[idx[closer]] = ti[closer]
        which[idx[closer]] = i
    return t, which


def render(
    prims: list[Ellipsoid],
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
    # float32 halves the memory traffic of the per-primitive passes; shading stays float64.
    o, d = origins[live].astype(np.float32), dirs[live].astype(np.float32)
    t, which = cast(prims, o, d)
    o, d, t = o.astype(np.float64), d.astype(np.float64), t.astype(np.float64)
    light = np.asarray(light_dir, np.float64)
    light = light / np.linalg.norm(light)
    for i, prim in enumerate(prims):
        sel = np.flatnonzero(which == i)
        if sel.size == 0:
            continue
        p = o[sel] + t[sel, None] * d[sel]
        n = _normals(prims, i, p)
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
