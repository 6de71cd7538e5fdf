"""A turned photo rendered at a camera facing its head and taken back into the photo: the
camera chosen, the photo seen from there (the far half of a face turned to one side
mirrored), and the gather back into the photo."""

import numpy as np
import pytest
import skimage.data
import torch
from registry_photos import group_photo

from s3d_fast.data.synthtalk import camera
from s3d_fast.model.photo_view import back_into_photo, landing_shift, paint_into_photo, photo_from_camera
from s3d_fast.model.reproject import project
from s3d_fast.model.source import FrontalPhoto
from s3d_fast.render import source
from s3d_fast.render.photo_geometry import (
    FRONTAL_FROM,
    far_half_plane,
    frontal_camera,
    landmark_points,
    photo_geometry,
    symmetry_plane,
    turn_from_front,
)

R = 128


def test_a_turned_camera_is_turned_back_to_the_turn_it_keeps_without_roll():
    turned = camera.free_view(camera.front_camera(), 40.0, 10.0, 5.0)
    front = frontal_camera(turned, keep=15.0)
    assert turn_from_front(turned) > 40
    assert turn_from_front(front) == pytest.approx(15.0, abs=1e-6)
    assert np.linalg.norm(front[:3, 3]) == pytest.approx(camera.DISTANCE)
    assert abs(front[1, 0]) < 1e-9  # the image's x axis stays level: no roll
    assert np.allclose(front[:3, 3] / np.linalg.norm(front[:3, 3]), -front[:3, 2])  # it looks at the head
    assert np.allclose(frontal_camera(turned, keep=0.0), camera.front_camera())


def test_a_photo_closer_to_frontal_keeps_its_own_camera():
    assert frontal_camera(camera.free_view(camera.front_camera(), FRONTAL_FROM - 1, 0.0)) is None
    assert frontal_camera(camera.free_view(camera.front_camera(), 0.0, FRONTAL_FROM + 1)) is not None


@pytest.fixture(scope="module")
def astronaut():
    src = source.load_source(skimage.data.astronaut(), R)
    points, anchor = photo_geometry(src.image, src.landmarks, src.c2w, src.K)
    image = torch.from_numpy(np.array(src.image)).permute(2, 0, 1)[None].float() / 255
    return src, image, torch.from_numpy(points)[None], torch.from_numpy(anchor)[None]


@pytest.mark.parametrize("yaw", [-30.0, 30.0])
def test_the_photo_seen_from_a_turned_camera_and_back_is_itself_on_the_face(astronaut, yaw):
    src, image, points, anchor = astronaut
    c2w = torch.from_numpy(camera.free_view(src.c2w, yaw, 0.0)).float()[None]
    K = torch.from_numpy(src.K).float()[None]
    seen = photo_from_camera(image, points, anchor, c2w, K)
    back = back_into_photo(seen, landing_shift(points, anchor, c2w, K, R, 1), 1)
    face = torch.from_numpy(src.mask > 0)
    turned = (seen - image)[0].abs().mean(0)[face]
    returned = (back - image)[0].abs().mean(0)[face]
    assert turned.mean() > 0.05  # the view did turn the face
    # Back it is the photo, resampled twice, except where the turn hid it (the far side).
    assert returned.median() < 0.05 and returned.mean() < 0.7 * turned.mean()
    assert torch.isfinite(seen).all() and seen.min() >= 0 and seen.max() <= 1


def test_nothing_painted_gives_the_photo_itself(astronaut):
    src, image, points, anchor = astronaut
    c2w = torch.from_numpy(camera.free_view(src.c2w, 30.0, 0.0)).float()[None]
    K = torch.from_numpy(src.K).float()[None]
    frontal = FrontalPhoto(image, None, landing_shift(points, anchor, c2w, K, R, 1))
    rendered = torch.rand(3, 3, R, R)
    out = paint_into_photo(rendered, torch.zeros(3, 1, R, R), frontal, 3)
    assert torch.equal(out, image.expand(3, -1, -1, -1))
    painted = paint_into_photo(rendered, torch.ones(3, 1, R, R), frontal, 3)
    assert (painted - image).abs().mean() > 0.1


# Mirror pairs of mediapipe's mesh inside the face (the subject's left, then right): the
# eyes' corners, the mouth's corners, the cheeks.
_INNER_PAIRS = ((263, 33), (362, 133), (291, 61), (280, 50), (425, 205), (346, 117), (411, 187))


def test_the_symmetry_plane_reflects_the_mesh_onto_itself(astronaut):
    src = astronaut[0]
    plane = symmetry_plane(src.landmarks, src.c2w, src.K)
    points = landmark_points(src.landmarks, src.c2w, src.K)
    normal, offset = plane[:3], plane[3]
    assert np.linalg.norm(normal) == pytest.approx(1.0, abs=1e-5)
    left, right = (points[[pair[side] for pair in _INNER_PAIRS]] for side in (0, 1))
    reflected = left - 2 * (left @ normal - offset)[:, None] * normal
    width = np.linalg.norm(points[454] - points[234])  # the face's width, cheek to cheek
    assert np.linalg.norm(reflected - right, axis=1).max() < 0.05 * width
    assert src.c2w[:3, 3] @ normal > offset  # towards the camera's side
    assert far_half_plane(src.landmarks, src.c2w, src.K) is None  # a frontal portrait: both halves shown


@pytest.fixture(scope="module")
def turned_face():
    """The group photo's face 2, turned about 35 degrees to one side."""
    src = source.load_source(group_photo(), R, face=2)
    points, anchor = photo_geometry(src.image, src.landmarks, src.c2w, src.K)
    image = torch.from_numpy(np.array(src.image)).permute(2, 0, 1)[None].float() / 255
    return src, image, torch.from_numpy(points)[None], torch.from_numpy(anchor)[None]


def test_the_far_half_of_a_face_turned_to_one_side_is_its_near_half_mirrored(turned_face):
    src, image, points, anchor = turned_face
    plane = far_half_plane(src.landmarks, src.c2w, src.K)
    assert plane is not None
    assert far_half_plane(src.landmarks, src.c2w, src.K, turns=(0.0, 20.0)) is None  # kept unmirrored nearer a profile
    c2w = torch.from_numpy(frontal_camera(src.c2w)).float()[None]
    K = torch.from_numpy(src.K).float()[None]
    mirror = (torch.from_numpy(plane)[None], torch.from_numpy(src.mask > 0)[None, None])
    plain = photo_from_camera(image, points, anchor, c2w, K)
    mirrored = photo_from_camera(image, points, anchor, c2w, K, mirror=mirror)
    # Where the mesh's mirror pairs land in the frontal view: the two halves of the face.
    mesh = torch.from_numpy(landmark_points(src.landmarks, src.c2w, src.K)).float()[None]
    at, _ = project(mesh, c2w, K, R)

    def pair_difference(view):
        colours = torch.nn.functional.grid_sample(view, at[:, None], align_corners=False)[0, :, 0]  # (3, 478)
        left, right = (colours[:, [pair[side] for pair in _INNER_PAIRS]] for side in (0, 1))
        return (left - right).abs().mean().item()

    # The far half shows the near half's colours where the photo hid, squeezed or folded it.
    assert pair_difference(mirrored) < 0.5 * pair_difference(plain)
    assert pair_difference(mirrored) < 0.08
    # The near half is the photo's own: the mirror leaves the half the camera sees alone.
    side = landmark_points(src.landmarks, src.c2w, src.K) @ plane[:3] - plane[3]
    near = torch.from_numpy(side > 0.1)
    near_pixels = ((at[0, near] + 1) * R / 2).long()
    assert len(near_pixels) > 50
    x, y = near_pixels[:, 0], near_pixels[:, 1]
    assert torch.equal(mirrored[0, :, y, x], plain[0, :, y, x])
