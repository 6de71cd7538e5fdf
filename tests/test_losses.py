"""Generator losses: the mouth and mouth-interior emphasis of the photometric terms."""

import torch

from s3d_fast.config import LossConfig
from s3d_fast.model.losses import generator_losses, mouth_region

H, r = 32, 8


def _masks():
    m = torch.ones(1, 1, H, H, dtype=torch.long)  # face
    m[..., 10:22, 6:26] = 2  # lips
    m[..., 14:18, 10:22] = 3  # the open mouth's interior
    return m


def test_mouth_region_lips_or_interior_grown():
    m = _masks()
    lips = mouth_region(m, grow=0)
    assert lips.sum() == 12 * 20
    interior = mouth_region(m, grow=1, labels=3)
    assert interior.sum() == 6 * 14  # 4 x 12 grown by one pixel on every side
    assert interior[0, 0, 13, 9] == 1 and interior[0, 0, 12, 9] == 0


def _photometric(weights, where):
    target = torch.zeros(1, 1, 3, H, H)
    rgb = target.clone()
    rgb[..., where[0], where[1]] = 1.0  # one wrong pixel
    out = {
        "rgb": rgb,
        "rgb_low": torch.zeros(1, 1, 3, r, r),
        "opacity": torch.zeros(1, 1, r, r),
        "offset_sq": torch.zeros(()),
    }
    return float(generator_losses(out, target, _masks(), weights)["photometric"])


def test_interior_emphasis_weights_the_open_mouth_only():
    inside, lip, skin = (15, 15), (11, 8), (2, 2)
    plain = LossConfig(mouth_emphasis=10.0)
    heavy = LossConfig(mouth_emphasis=10.0, interior_emphasis=30.0)
    # Without it, an error inside the mouth costs what one on the lips does, 11x one on skin.
    assert abs(_photometric(plain, inside) - _photometric(plain, lip)) < 1e-9
    assert abs(_photometric(plain, inside) / _photometric(plain, skin) - 11.0) < 1e-5
    # With it, the interior costs 1 + 10 + 30 times skin; lips and skin keep their ratio.
    assert abs(_photometric(heavy, inside) / _photometric(heavy, skin) - 41.0) < 1e-4
    assert abs(_photometric(heavy, lip) / _photometric(heavy, skin) - 11.0) < 1e-5
