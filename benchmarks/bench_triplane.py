"""Tri-plane sampling: fused op vs the grid_sample reference vs EG3D's layout.

    pytest benchmarks/bench_triplane.py --benchmark-only

B = 1, N = 2^17 uniform points, C = 32, 2 threads; (a) one 256^2 scale,
(b) three scales 64/128/256 concatenated. Forward and forward+backward
(gradients to planes and points); throughput from the fastest round of each
implementation (conftest.min_seconds). Peak memory of one forward pass above the
state before it is measured in a fresh process (see aids/memory.py).
"""

import pytest
import torch
from conftest import min_seconds

from aids import memory
from aids.triplane import CASES, IMPLS, differentiable_runner, make_inputs, runner


def points_per_second(benchmark, n_points):
    seconds = min_seconds(benchmark)  # see min_seconds: first-touch page faults are noise
    return None if seconds is None else n_points / seconds / 1e6


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_triplane_forward(benchmark, record, case, impl):
    planes, points = make_inputs(case)
    forward = runner(impl, planes, points)
    benchmark.group = f"triplane forward {case}"
    with torch.no_grad():
        benchmark.pedantic(forward, rounds=10, iterations=1, warmup_rounds=2)
    rate = points_per_second(benchmark, points.shape[1])
    extra = {}
    if rate is not None and memory.supported():
        m = memory.measure_in_subprocess("aids.triplane", case, impl)
        extra["peak_extra_MB"] = round((m["peak_bytes"] - m["output_bytes"]) / 2**20, 1)
        benchmark.extra_info.update(m)
    benchmark.extra_info["Mpoints_per_s"] = rate
    record(f"triplane forward {case}", impl, rate, "Mpts/s", **extra)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_triplane_forward_backward(benchmark, record, case, impl):
    planes, points = make_inputs(case)
    forward, leaves = differentiable_runner(impl, planes, points)
    grad_out = torch.randn_like(forward())

    def step():
        return torch.autograd.grad(forward(), [points, *leaves], grad_out)

    benchmark.group = f"triplane forward+backward {case}"
    benchmark.pedantic(step, rounds=7, iterations=1, warmup_rounds=1)
    rate = points_per_second(benchmark, points.shape[1])
    benchmark.extra_info["Mpoints_per_s"] = rate
    record(f"triplane forward+backward {case}", impl, rate, "Mpts/s")
