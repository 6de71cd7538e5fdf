"""A turned photo rendered at a camera facing its head and taken back into the photo: the
camera chosen, the photo seen from there, and the gather back into the photo."""

import numpy as np
import pytest
import skimage.data
import torch

from s3d_fast.data.synthtalk import camera
from s3d_fast.model.photo_view import back_into_photo, landing_shift, paint_into_photo, photo_from_camera
from s3d_fast.model.source import FrontalPhoto
from s3d_fast.render import source
from s3d_fast.render.photo_geometry import FRONTAL_FROM, frontal_camera, photo_geometry, turn_from_front

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
