"""tools/make_portraits.py: the real portraits and the speech of the photo figures."""

import numpy as np
import soundfile
from PIL import Image
from tool_loader import load_tool

make_portraits = load_tool("make_portraits")


def _mesh(x0, y0, x1, y1):
    return np.array([[x0, y0, 0.0], [x1, y1, 0.0], [(x0 + x1) / 2, y0, 0.0]], np.float32)


def test_the_square_is_centred_on_the_mesh_at_its_scale():
    x0, y0, side = make_portraits.face_square(_mesh(100, 120, 140, 200), (600, 800), scale=2.0)
    assert side == 160  # twice the larger extent (80)
    assert (x0 + side / 2, y0 + side / 2) == (120, 160)


def test_the_square_moves_inside_the_photo_and_shrinks_only_to_fit():
    x0, y0, side = make_portraits.face_square(_mesh(0, 10, 40, 50), (300, 400), scale=2.0)
    assert (x0, y0, side) == (0, 0, 80)
    x0, y0, side = make_portraits.face_square(_mesh(350, 250, 390, 290), (300, 400), scale=2.0)
    assert (x0 + side, y0 + side, side) == (400, 300, 80)
    x0, y0, side = make_portraits.face_square(_mesh(10, 10, 90, 60), (100, 200), scale=2.2)
    assert (y0, side) == (0, 100)


def test_writes_the_eight_photos_and_the_sentence(tmp_path):
    paths = make_portraits.make_portraits(str(tmp_path))
    names = sorted(p.rsplit("/", 1)[1] for p in paths)
    assert names == ["astronaut.png"] + [f"group_face{n}.png" for n in range(1, 7)] + ["hopper.png"]
    sides = []
    for n in range(1, 7):
        with Image.open(tmp_path / "photos" / f"group_face{n}.png") as image:
            assert image.width == image.height
            sides.append(image.width)
    assert min(sides) > 40  # each a face cut out, not a sliver
    samples, rate = soundfile.read(tmp_path / "speech.wav")
    assert 4.0 < len(samples) / rate < 8.0 and np.abs(samples).max() > 0.1
    assert not list(tmp_path.rglob("*.tmp*"))  # nothing half-written left behind
