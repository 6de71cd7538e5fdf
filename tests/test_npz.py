"""The one checked ``.npz`` reader: bounds before anything is inflated."""

import numpy as np
import pytest

from s3d_fast.data import npz


def test_an_npz_inflating_beyond_its_bound_is_refused_before_inflating(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    npz.save_npz(path, {"zeros": np.zeros((1024, 1024), np.float32)})  # 4 MB of zeros, ~4 KB on disk
    assert path.stat().st_size < 100_000
    assert npz.load_npz(path)["zeros"].shape == (1024, 1024)
    monkeypatch.setattr(npz, "MAX_NPZ_BYTES", 1 << 20)
    with pytest.raises(npz.ArrayFileError, match="inflate to more than"):
        npz.load_npz(path)
