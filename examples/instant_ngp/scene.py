"""A desk-top still life, sphere-traced in PyTorch: the scene the Instant-NGP example
trains on, so that no data has to be downloaded.

It has what makes real objects hard for a radiance field: textures with sharp edges (a
checkered box, a wood-grain base, a striped ring), thin parts (a wire stand and ring a
few pixels wide), specular highlights that move with the viewer (a glossy ball) and cast
shadows. World frame: z up, the object inside [-1.2, 1.2]^3 (the example's box is
[-1.5, 1.5]^3).
"""

from __future__ import annotations

import math

import torch

LIGHT = torch.tensor([0.45, -0.35, 0.82]) / math.sqrt(0.45**2 + 0.35**2 + 0.82**2)
AMBIENT = 0.28
BOUND = 1.25  # every surface lies inside [-BOUND, BOUND]^3

# Material ids, in the order `primitive_distances` stacks them.
BASE, BALL, RING, BOX, ROD, WIRE = range(6)


def _rotate_z(p: torch.Tensor, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = p.unbind(-1)
    return torch.stack((c * x + s * y, -s * x + c * y, z), -1)


def _box_sdf(p: torch.Tensor, half: float, radius: float) -> torch.Tensor:
    q = p.abs() - (half - radius)
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0) - radius


def _capsule_sdf(p: torch.Tensor, a: tuple, b: tuple, radius: float) -> torch.Tensor:
    a, b = p.new_tensor(a), p.new_tensor(b)
    ab = b - a
    h = ((p - a) @ ab / ab.dot(ab)).clamp(0, 1)
    return (p - a - h[..., None] * ab).norm(dim=-1) - radius


def _torus_sdf(p: torch.Tensor, major: float, minor: float) -> torch.Tensor:
    """Torus around the local z axis."""
    q = torch.stack((p[..., :2].norm(dim=-1) - major, p[..., 2]), -1)
    return q.norm(dim=-1) - minor


def _local_ring(p: torch.Tensor) -> torch.Tensor:
    # The standing ring: centred at (-0.45, 0.3, -0.435), its axis along y rotated 35 degrees.
    q = _rotate_z(p - p.new_tensor((-0.45, 0.3, -0.435)), math.radians(35))
    return torch.stack((q[..., 0], q[..., 2], q[..., 1]), -1)


def _local_box(p: torch.Tensor) -> torch.Tensor:
    return _rotate_z(p - p.new_tensor((0.05, -0.45, -0.56)), math.radians(28))


def primitive_distances(p: torch.Tensor) -> torch.Tensor:
    """(..., 3) points -> (..., 6) signed distances to each part, in material-id order."""
    x, y, z = p.unbind(-1)
    radial = torch.stack((x, y), -1).norm(dim=-1)
    base = torch.maximum(radial - 1.0, (z + 0.9).abs() - 0.08)
    ball = (p - p.new_tensor((0.5, 0.32, -0.45))).norm(dim=-1) - 0.37
    ring = _torus_sdf(_local_ring(p), 0.3, 0.085)
    box = _box_sdf(_local_box(p), 0.26, 0.02)
    rod = torch.minimum(
        _capsule_sdf(p, (-0.55, -0.5, -0.85), (-0.55, -0.5, 0.55), 0.028),
        _capsule_sdf(p, (-0.55, -0.5, 0.55), (-0.25, -0.23, 0.62), 0.022),
    )
    wire = _torus_sdf(p - p.new_tensor((0.0, 0.0, 0.62)), 0.34, 0.018)
    return torch.stack((base, ball, ring, box, rod, wire), -1)


def scene_distance(p: torch.Tensor) -> torch.Tensor:
    return primitive_distances(p).min(-1).values


def normals(p: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    offsets = torch.eye(3, dtype=p.dtype, device=p.device) * eps
    grad = torch.stack([scene_distance(p + offsets[i]) - scene_distance(p - offsets[i]) for i in range(3)], -1)
    return torch.nn.functional.normalize(grad, dim=-1)


def _box_interval(origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (-BOUND - origins) * inv
    t1 = (BOUND - origins) * inv
    near = torch.minimum(t0, t1).max(-1).values.clamp(min=0)
    far = torch.maximum(t0, t1).min(-1).values
    return near, far


def sphere_trace(
    origins: torch.Tensor, directions: torch.Tensor, steps: int = 160
) -> tuple[torch.Tensor, torch.Tensor]:
    """First surface hit along each ray: (t, hit mask)."""
    near, far = _box_interval(origins, directions)
    t = near.clone()
    active = near < far
    hit = torch.zeros_like(active)
    for _ in range(steps):
        if not bool(active.any()):
            break
        index = active.nonzero().squeeze(-1)
        d = scene_distance(origins[index] + t[index, None] * directions[index])
        close = d < 2e-4 * (1 + t[index])
        hit[index[close]] = True
        t[index] += torch.where(close, torch.zeros_like(d), 0.9 * d)
        still = ~close & (t[index] < far[index])
        active[index] = still
    return t, hit


def _albedo(material: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    albedo = torch.empty_like(p)
    # Wood grain: rings around a point off the base's centre, warped by angle.
    x, y, _ = p.unbind(-1)
    r = torch.stack((x - 0.3, y + 0.2), -1).norm(dim=-1)
    grain = 0.5 + 0.5 * torch.sin(38 * r + 2.5 * torch.sin(3 * torch.atan2(y + 0.2, x - 0.3)))
    wood = torch.lerp(p.new_tensor((0.72, 0.52, 0.3)), p.new_tensor((0.45, 0.27, 0.12)), grain[..., None])
    albedo[:] = wood
    albedo[material == BALL] = p.new_tensor((0.75, 0.08, 0.06))
    # Stripes around the ring's tube.
    q = _local_ring(p)
    stripes = torch.sin(12 * torch.atan2(q[..., 1], q[..., 0])) > 0
    ring = torch.where(stripes[..., None], p.new_tensor((0.1, 0.25, 0.8)), p.new_tensor((0.92, 0.9, 0.85)))
    albedo = torch.where((material == RING)[..., None], ring, albedo)
    # A checkerboard of 8 squares across each face.
    c = torch.floor((_local_box(p) + 0.26) / 0.065).sum(-1).remainder(2) > 0
    box = torch.where(c[..., None], p.new_tensor((0.95, 0.78, 0.1)), p.new_tensor((0.1, 0.35, 0.2)))
    albedo = torch.where((material == BOX)[..., None], box, albedo)
    metal = p.new_tensor((0.55, 0.56, 0.6))
    albedo = torch.where(((material == ROD) | (material == WIRE))[..., None], metal, albedo)
    return albedo


# Blinn-Phong specular strength and exponent per material.
_SPECULAR = ((0.08, 8.0), (0.7, 60.0), (0.25, 24.0), (0.15, 16.0), (0.6, 40.0), (0.6, 40.0))


def shade(origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour (linear in [0, 1], not premultiplied) and coverage (0 or 1) of each ray."""
    t, hit = sphere_trace(origins, directions)
    rgb = torch.zeros_like(origins)
    index = hit.nonzero().squeeze(-1)
    if index.numel() == 0:
        return rgb, hit.float()
    p = origins[index] + t[index, None] * directions[index]
    n = normals(p)
    material = primitive_distances(p).argmin(-1)
    light = LIGHT.to(p)
    shadow_t, shadowed = sphere_trace(p + 4e-3 * n, light.expand_as(p), steps=96)
    lit = (~shadowed).float()
    diffuse = (n @ light).clamp(min=0) * lit
    half = torch.nn.functional.normalize(light - directions[index], dim=-1)
    table = p.new_tensor(_SPECULAR)
    strength, exponent = table[material, 0], table[material, 1]
    specular = strength * (n * half).sum(-1).clamp(min=0).pow(exponent) * lit
    colour = _albedo(material, p) * (AMBIENT + (1 - AMBIENT) * diffuse)[..., None] + specular[..., None]
    rgb[index] = colour.clamp(0, 1)
    return rgb, hit.float()
