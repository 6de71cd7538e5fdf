"""Outputs that must not change when the package is restructured: the demo's frames,
every fused op forward and backward, and the first steps of a training run, compared
with the outputs saved in tests/golden/ (see tests/golden/cases.py). Bit for bit on the
build and processor that saved them; within the stated tolerances elsewhere."""

import json

import pytest
import torch
from golden import cases
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def saved():
    return load_file(str(cases.OUTPUTS)), json.loads(cases.FINGERPRINT.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("group", ["ops", "demo", "train"])
def test_outputs_match_the_saved_ones(saved, group):
    expected, where = saved
    computed = {"ops": cases.ops_outputs, "demo": cases.demo_outputs, "train": cases.train_outputs}[group]()
    wanted = {k for k in expected if k.startswith(group + ".")}
    assert wanted and set(computed) == wanted, sorted(set(computed) ^ wanted)
    exact = cases.fingerprint() == where
    for name in sorted(wanted):
        a, b = computed[name], expected[name]
        assert a.dtype == b.dtype and a.shape == b.shape, (name, a.dtype, b.dtype, a.shape, b.shape)
        if exact:
            assert torch.equal(a, b), f"{name} differs from the saved output on the machine that saved it"
        else:
            rtol, atol = cases.TOLERANCES[cases.group_of(name)]
            torch.testing.assert_close(a.double(), b.double(), rtol=rtol, atol=atol, msg=name)
