"""The source image of a render: photo -> aligned crop, mask and pose; data-set frame as is."""

import numpy as np
import pytest
import skimage.data
from PIL import Image
from render_fixtures import write_dataset_frame

from s3d_fast.data.preprocess import geometry
from s3d_fast.data.synthtalk import camera
from s3d_fast.render import source
from s3d_fast.render.errors import NoFaceError, SourceImageError

R = 128


@pytest.fixture(scope="module")
def astronaut_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(path, quality=95)
    return source.load_source(path, R)


def test_photo_is_detected_aligned_masked_and_posed(astronaut_source):
    src = astronaut_source
    assert src.kind == "photo"
    assert src.image.shape == (R, R, 3) and src.image.dtype == np.uint8
    assert src.mask.shape == (R, R) and src.mask.dtype == np.uint8
    labels = set(np.unique(src.mask).tolist())
    assert {0, 1, 2} <= labels <= {0, 1, 2, 3}
    # Aligned: the face fills the middle of the crop (FFHQ framing), background at the rim.
    ys, xs = np.nonzero(src.mask)
    assert abs(xs.mean() - R / 2) < 0.12 * R and abs(ys.mean() - R / 2) < 0.15 * R
    assert 0.15 < (src.mask > 0).mean() < 0.7
    assert (src.mask[:4] == 0).all()
    # The lips sit below the face's centre.
    assert np.nonzero(src.mask == 2)[0].mean() > ys.mean()
    # A rigid camera at the nominal distance that looks at the head, near frontal for
    # this photo (the astronaut faces the camera, head turned slightly).
    rot = src.c2w[:3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    assert np.linalg.norm(src.c2w[:3, 3]) == pytest.approx(camera.DISTANCE, rel=1e-6)
    yaw, pitch, _ = geometry.euler_from_rotation(np.linalg.inv(src.c2w)[:3, :3] @ camera.front_camera()[:3, :3])
    assert abs(yaw) < 35 and abs(pitch) < 35
    np.testing.assert_allclose(src.K, camera.intrinsics(R))


def test_photo_given_as_array_matches_the_file(astronaut_source):
    arr = source.load_source(skimage.data.astronaut(), R)
    assert arr.kind == "photo"
    assert np.abs(arr.image.astype(int) - astronaut_source.image).mean() < 6  # jpeg vs raw
    assert (arr.mask == astronaut_source.mask).mean() > 0.95


def test_no_face_is_a_clear_error(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(blank)
    with pytest.raises(NoFaceError, match=f"no face found in {blank}"):
        source.load_source(blank, R)
    with pytest.raises(NoFaceError, match="no face found"):
        source.load_source(np.zeros((8, 8, 3), np.uint8), R)


def test_dataset_frame_with_sidecar_is_used_as_is(tmp_path):
    path, img, c2w = write_dataset_frame(tmp_path / "frame.png", size=64)
    src = source.load_source(path, 64)
    assert src.kind == "dataset-frame"
    np.testing.assert_array_equal(src.image, img)
    np.testing.assert_allclose(src.c2w, c2w, atol=1e-6)
    np.testing.assert_allclose(src.K, camera.intrinsics(64), atol=1e-5)
    assert src.mask.sum() == 32 * 32
    # At another model resolution: resized, intrinsics scaled, labels kept crisp.
    big = source.load_source(path, 128)
    assert big.image.shape == (128, 128, 3)
    np.testing.assert_allclose(big.K, camera.intrinsics(128), atol=1e-4)
    assert set(np.unique(big.mask).tolist()) == {0, 1} and big.mask.sum() == 64 * 64


def test_bad_source_files_are_clear_errors(tmp_path):
    with pytest.raises(SourceImageError, match="no such image file"):
        source.load_source(tmp_path / "missing.png", R)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(SourceImageError, match="cannot read image"):
        source.load_source(tmp_path / "junk.png", R)
    path, _, _ = write_dataset_frame(tmp_path / "f.png", size=64)
    np.savez(tmp_path / "f.npz", c2w=np.eye(4))  # sidecar without K
    with pytest.raises(SourceImageError, match="lacks 'K'"):
        source.load_source(path, 64)
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(tmp_path / "wide.png")
    np.savez(tmp_path / "wide.npz", c2w=np.eye(4), K=np.eye(3))
    with pytest.raises(SourceImageError, match="square"):
        source.load_source(tmp_path / "wide.png", 64)
    with pytest.raises(SourceImageError, match="uint8"):
        source.load_source(np.zeros((64, 64, 3), np.float32), 64)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """Two real faces side by side: the astronaut (left, smaller) and Grace Hopper (right)."""
    import matplotlib.cbook

    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    astronaut = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((300, 300)))
    canvas = np.full((hopper.shape[0], 300 + hopper.shape[1], 3), 128, np.uint8)
    canvas[:300, :300] = astronaut
    canvas[:, 300:] = hopper
    path = tmp_path_factory.mktemp("group") / "two.png"
    Image.fromarray(canvas).save(path)
    return path


def test_a_photo_with_several_faces_animates_the_largest_or_the_one_picked(two_people):
    largest = source.load_source(two_people, R)
    assert (largest.faces, largest.face) == (2, 2)
    left = source.load_source(two_people, R, face=1)
    right = source.load_source(two_people, R, face=2)
    assert (left.faces, left.face) == (2, 1)
    np.testing.assert_array_equal(right.image, largest.image)
    assert np.abs(left.image.astype(int) - right.image).mean() > 20  # two different people
    assert left.landmarks.shape == (478, 3)
    with pytest.raises(NoFaceError, match=r"--face 3: .* has 2 faces \(numbered 1 to 2 from left to right\)"):
        source.load_source(two_people, R, face=3)
