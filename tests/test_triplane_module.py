"""nn.TriPlane, and the fused op's memory footprint."""

import pytest
import torch

from aids import memory
from s3d_fast.nn import TriPlane
from s3d_fast.ops import reference


def test_module_trains_toward_a_target():
    module = TriPlane(channels=4, resolutions=(8, (4, 6)), plane_reduce="sum", scale_reduce="concat")
    assert module.out_channels == 8
    points = torch.rand(1, 256, 3) * 2 - 1
    target = torch.sin(3 * points).repeat(1, 1, 3)[..., :8]
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(module(points), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_module_matches_reference_op():
    module = TriPlane(channels=5, resolutions=(6, 3), batch=2, plane_reduce="product", axes="eg3d")
    points = torch.rand(2, 40, 3) * 2 - 1
    expected = reference.triplane_sample(list(module.planes), points, plane_reduce="product", axes="eg3d")
    torch.testing.assert_close(module(points), expected)


def test_module_rejects_bad_configuration():
    with pytest.raises(ValueError, match="resolutions"):
        TriPlane(resolutions=(0,))
    with pytest.raises(ValueError, match="channels"):
        TriPlane(channels=0)


@pytest.mark.skipif(not memory.supported(), reason="needs /proc/self/clear_refs (Linux) to read peak memory")
def test_fused_forward_allocates_no_per_plane_intermediate():
    # One 256^2 scale, 2^17 points, 32 channels: an (N, 3, C) float32
    # intermediate would be 48 MiB; the fused pass may only add its output.
    fused = memory.measure_in_subprocess("aids.triplane", "1x256", "fused")
    ref = memory.measure_in_subprocess("aids.triplane", "1x256", "reference")
    intermediate = fused["n_points"] * 3 * fused["channels"] * 4
    assert fused["peak_bytes"] - fused["output_bytes"] < intermediate / 16
    # The measurement is sensitive enough to see the reference's intermediates.
    assert ref["peak_bytes"] - ref["output_bytes"] > intermediate
