"""Reprojecting the source into a rendered frame's view, on a plane whose geometry is known."""

import torch

from s3d_fast.data.synthtalk import camera
from s3d_fast.model.rays import camera_rays, scaled_intrinsics
from s3d_fast.model.reproject import reproject_source

R, r = 64, 16


def _plane_view(c2w, K, plane_z=0.0, opacity=1.0):
    """Rays of a camera and the depth at which they meet the plane z = plane_z (head space)."""
    o, d = camera_rays(c2w[None], scaled_intrinsics(K, R, r)[None], r)
    depth = (plane_z - o[..., 2]) / d[..., 2] * opacity
    return o, d, depth, torch.full_like(depth, opacity)


def _ramp():
    u = (torch.arange(R, dtype=torch.float32) + 0.5) / R
    return torch.stack([u.expand(R, R), u[:, None].expand(R, R), torch.full((R, R), 0.5)])[None]


def test_the_source_camera_sees_the_source_unchanged():
    c2w = torch.from_numpy(camera.front_camera()).float()
    K = torch.from_numpy(camera.intrinsics(R)).float()
    image = torch.rand(1, 3, R, R, generator=torch.Generator().manual_seed(0))
    o, d, depth, opacity = _plane_view(c2w, K)
    out = reproject_source(image, c2w[None], K[None], o, d, depth, opacity, 1)
    torch.testing.assert_close(out, image, rtol=0, atol=1e-5)


def test_a_moved_camera_sees_the_source_texture_where_the_plane_is():
    c2w = torch.from_numpy(camera.front_camera()).float()
    K = torch.from_numpy(camera.intrinsics(R)).float()
    image = _ramp()  # red grows with the column, green with the row
    moved = c2w.clone()
    moved[0, 3] += 0.1  # the camera steps right along the head's x: the plane moves left in view
    o, d, depth, opacity = _plane_view(moved, K)
    out = reproject_source(image, c2w[None], K[None], o, d, depth, opacity, 1)
    # A pixel of the moved view shows the plane point 0.1 further right, i.e. source
    # column + fx * 0.1 / distance pixels: red rises by that many columns' worth.
    shift = float(K[0, 0]) * 0.1 / abs(float(c2w[2, 3])) / R
    inner = slice(R // 4, 3 * R // 4)
    torch.testing.assert_close(out[0, 0, inner, inner], image[0, 0, inner, inner] + shift, rtol=0, atol=2e-3)
    torch.testing.assert_close(out[0, 1], image[0, 1], rtol=0, atol=1e-5)  # rows unchanged


def test_pixels_without_a_surface_keep_their_own_source_pixel():
    c2w = torch.from_numpy(camera.front_camera()).float()
    K = torch.from_numpy(camera.intrinsics(R)).float()
    moved = c2w.clone()
    moved[0, 3] += 0.3
    image = _ramp()
    o, d, depth, _ = _plane_view(moved, K)
    empty = torch.zeros_like(depth)  # nothing rendered: opacity 0 everywhere
    out = reproject_source(image, c2w[None], K[None], o, d, depth, empty, 1)
    torch.testing.assert_close(out, image, rtol=0, atol=1e-5)
    two = reproject_source(
        image.expand(2, 3, R, R),
        c2w[None].expand(2, 4, 4),
        K[None].expand(2, 3, 3),
        o.expand(4, -1, -1),
        d.expand(4, -1, -1),
        depth.expand(4, -1),
        empty.expand(4, -1),
        2,
    )
    assert two.shape == (4, 3, R, R)
