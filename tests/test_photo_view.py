"""A photo seen from another camera through its own geometry: the face mesh's depth, the
person moving with the head, the background staying put."""

import numpy as np
import pytest
import skimage.data
import torch

from s3d_fast.data.synthtalk import camera
from s3d_fast.model.photo_view import photo_in_view
from s3d_fast.render import source
from s3d_fast.render.photo_geometry import depth_map, photo_geometry

R = 128


@pytest.fixture(scope="module")
def astronaut():
    src = source.load_source(skimage.data.astronaut(), R)
    points, anchor = photo_geometry(src.image, src.landmarks, src.c2w, src.K)
    return src, torch.from_numpy(points)[None], torch.from_numpy(anchor)[None]


def _view(src, points, anchor, yaw):
    image = torch.from_numpy(np.array(src.image)).permute(2, 0, 1)[None].float() / 255
    c2w = torch.from_numpy(camera.free_view(src.c2w, yaw, 0.0)).float()[None]
    K = torch.from_numpy(src.K).float()[None]
    return image, photo_in_view(image, points, anchor, c2w, K, 1)[0]


def test_the_face_has_depth_and_the_nose_is_in_front(astronaut):
    src, _, _ = astronaut
    depth, inside = depth_map(src.landmarks, R, camera.DISTANCE, float(src.K[0, 0]), size=R)
    assert inside.mean() > 0.1
    nose = depth[int(src.landmarks[1, 1]), int(src.landmarks[1, 0])]
    cheek = depth[int(src.landmarks[234, 1]), int(src.landmarks[234, 0])]
    assert nose < cheek - 0.2  # head units: the nose stands well in front of the face's outline
    assert np.isfinite(depth).all() and np.abs(depth - camera.DISTANCE).max() < 1.5


def test_the_source_camera_gives_the_photo_back(astronaut):
    image, seen = _view(*astronaut, yaw=0.0)
    assert (seen - image[0]).abs().max() < 1e-4


def test_a_turn_moves_the_face_and_keeps_the_background(astronaut):
    src, points, anchor = astronaut
    image, seen = _view(src, points, anchor, yaw=20.0)
    _, other = _view(src, points, anchor, yaw=-20.0)
    face = torch.from_numpy(src.mask > 0)
    assert (seen - image[0])[:, face].abs().mean() > 0.03  # the face turned
    assert (seen - other)[:, face].abs().mean() > 0.03  # each way differently
    background = torch.from_numpy(anchor[0, 0].numpy() < 1e-3)
    big = torch.nn.functional.interpolate(background[None, None].float(), size=(R, R))[0, 0] > 0.5
    assert big.sum() > 100
    assert (seen - image[0])[:, big].abs().max() < 0.5 / 255  # below one grey level
    assert torch.isfinite(seen).all() and seen.min() >= 0 and seen.max() <= 1
