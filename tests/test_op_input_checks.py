"""Every bad input in tests/op_bad_inputs.py, passed to a fused op directly
(torch.ops.s3d_fast) or through s3d_fast.ops, ends in one clear error that names
the argument: never a crash, a hang or a result read from outside the inputs.
The cases run in a subprocess, so that a segfault fails this test (naming the
case) instead of killing pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s3d_fast import _ext, ops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def outcomes():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "op_bad_inputs.py")], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    finished = [line for line in lines if "outcome" in line]
    assert proc.returncode == 0, (
        f"the cases' process died (code {proc.returncode}) during {started[-1:]}: {proc.stderr[-2000:]}"
    )
    assert len(finished) == len(started) and finished
    return finished


def test_every_bad_input_ends_in_an_error_naming_the_argument(outcomes):
    wrong = [
        f"{o['op']}: {o['what']}: {o.get('type', '')} {o.get('message', 'returned')!r} (expected {o['expected']!r})"
        for o in outcomes
        if o["outcome"] != "error" or o["expected"] not in o["message"]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_registered_op_has_bad_inputs_tried(outcomes):
    tried = {o["op"] for o in outcomes}
    registered = {"render_weight_forward", "render_weight_backward", "composite_forward", "composite_backward"}
    registered |= {"ray_offsets", "triplane_forward", "triplane_backward", "hashgrid_forward", "hashgrid_backward"}
    registered |= {"occgrid_march", "mlp_forward", "mlp_backward"}
    assert registered <= tried
    assert all(
        op in tried for op in ("ops.render_weight_from_density", "ops.composite", "ops.occgrid_march", "ops.mlp")
    )


def test_unchecked_entry_skips_only_the_offsets_values():
    """check=False (what s3d_fast.ops passes, having built the offsets) gives the same
    result as the checked call; shape and dtype checks stay on."""
    m = _ext.load()
    sigmas, t0 = torch.rand(10), torch.rand(10)
    offsets = torch.tensor([0, 4, 4, 10])
    checked = m.render_weight_forward(offsets, sigmas, t0, t0 + 0.1, 0)
    unchecked = m.render_weight_forward(offsets, sigmas, t0, t0 + 0.1, 0, False)
    for a, b in zip(checked, unchecked):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="t_starts"):
        m.render_weight_forward(offsets, sigmas, t0[:3], t0 + 0.1, 0, False)


def test_packed_info_that_is_valid_still_matches_ray_indices():
    sigmas, t0 = torch.rand(10), torch.rand(10)
    ray_indices = torch.tensor([0, 0, 0, 0, 2, 2, 2, 2, 2, 2])
    packed_info = torch.tensor([[0, 4], [4, 0], [4, 6]])
    by_info = ops.render_weight_from_density(t0, t0 + 0.1, sigmas, packed_info=packed_info)
    by_index = ops.render_weight_from_density(t0, t0 + 0.1, sigmas, ray_indices=ray_indices, n_rays=3)
    for a, b in zip(by_info, by_index):
        assert torch.equal(a, b)
