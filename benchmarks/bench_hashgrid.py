"""Hash-grid encoding: fused kernels vs the pure-PyTorch reference, and the
random-gather memory roofline, in one run.

Issue configuration: 2 threads, N = 2^18 points in [0, 1]^3, L = 16, F = 2,
T = 2^19, base resolution 16, per-level scale 1.5.

    PYTHONPATH=. python -m pytest benchmarks/bench_hashgrid.py -q -s

``test_zz_summary`` prints (and stores in its extra_info) the speed-ups and
the fraction of the gather roofline; they are ratios within this one run.
"""
import time

import pytest
import torch

from s3d_fast import ops
from s3d_fast.ops._hashgrid_spec import HashGridLayout
from s3d_fast.ops.hashgrid import random_gather_rate_probe

from conftest import median_seconds

N = 1 << 18
THREADS = 2
CONFIG = dict(n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5)
LAYOUT = HashGridLayout.build(3, **CONFIG)
GATHERS_PER_POINT = LAYOUT.n_levels * 2**3
RESULTS = {}  # name -> points/s (or gathers/s), shared by the summary


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, 3, generator=g)
    params = torch.empty(LAYOUT.n_params).uniform_(-1e-4, 1e-4, generator=g)
    grad = torch.randn(N, LAYOUT.n_output_dims, generator=g)
    return x, params, grad


def _run(benchmark, name, fn, rounds, unit="points/s", count=N, warmup=True):
    if warmup:
        fn()  # the extension build on first use, first touch of buffers
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    if median_seconds(benchmark) is None:  # --benchmark-disable: ran once, nothing to report
        return
    rate = count / benchmark.stats.stats.min
    RESULTS[name] = rate
    benchmark.extra_info[unit] = rate
    benchmark.extra_info["threads"] = THREADS


def _chunked(encode, chunk=1 << 15):
    """The reference over 2^15-point chunks: at N = 2^18 its (N, 8, 3) int64
    temporaries are tens of MB per level, and chunking is what a careful
    pure-PyTorch user would do; the conservative baseline."""
    def run(x, params, **kw):
        return torch.cat([encode(part, params, **kw) for part in x.split(chunk)])
    return run


def _fwd(encode, x, params):
    def fn():
        with torch.no_grad():
            encode(x, params, **CONFIG)
    return fn


def _fwd_bwd(encode, x, params, grad):
    def fn():
        p = params.detach().requires_grad_()
        encode(x, p, **CONFIG).backward(grad)
    return fn


@pytest.mark.benchmark(group="hashgrid-forward")
def test_fused_forward(benchmark, data):
    x, params, _ = data
    _run(benchmark, "fused_forward", _fwd(ops.hashgrid_encode, x, params), rounds=10)


@pytest.mark.benchmark(group="hashgrid-forward")
def test_reference_forward(benchmark, data):
    x, params, _ = data
    _run(benchmark, "reference_forward", _fwd(ops.reference.hashgrid_encode, x, params), rounds=2, warmup=False)


@pytest.mark.benchmark(group="hashgrid-forward")
def test_reference_chunked_forward(benchmark, data):
    x, params, _ = data
    encode = _chunked(ops.reference.hashgrid_encode)
    _run(benchmark, "reference_chunked_forward", _fwd(encode, x, params), rounds=2, warmup=False)


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_fused_forward_backward(benchmark, data):
    x, params, grad = data
    _run(benchmark, "fused_forward_backward", _fwd_bwd(ops.hashgrid_encode, x, params, grad), rounds=10)


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_reference_forward_backward(benchmark, data):
    x, params, grad = data
    _run(benchmark, "reference_forward_backward", _fwd_bwd(ops.reference.hashgrid_encode, x, params, grad),
         rounds=2, warmup=False)


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_reference_chunked_forward_backward(benchmark, data):
    x, params, grad = data
    encode = _chunked(ops.reference.hashgrid_encode)
    _run(benchmark, "reference_chunked_forward_backward", _fwd_bwd(encode, x, params, grad), rounds=2, warmup=False)


@pytest.mark.benchmark(group="hashgrid-roofline")
def test_random_gather_roofline(benchmark, data):
    """n random 8-byte gathers from a table as large as the encoding's."""
    _, params, _ = data
    table = params.view(-1, 2)
    n = N * GATHERS_PER_POINT
    _run(benchmark, "gathers", lambda: random_gather_rate_probe(table, n), rounds=5, unit="gathers/s", count=n)


def test_zz_summary(benchmark):
    needed = ("fused_forward", "reference_forward", "reference_chunked_forward", "fused_forward_backward",
              "reference_forward_backward", "reference_chunked_forward_backward", "gathers")
    missing = [k for k in needed if k not in RESULTS]
    if missing:
        pytest.skip(f"summary needs the other benchmarks of this file in the same run (missing {missing})")
    roofline = RESULTS["gathers"] / GATHERS_PER_POINT
    summary = {
        "table_MB": LAYOUT.n_params * 4 / 2**20,
        "fused_forward_Mpts_s": RESULTS["fused_forward"] / 1e6,
        "reference_forward_Mpts_s": RESULTS["reference_forward"] / 1e6,
        "forward_speedup": RESULTS["fused_forward"] / RESULTS["reference_forward"],
        "fused_fwd_bwd_Mpts_s": RESULTS["fused_forward_backward"] / 1e6,
        "reference_fwd_bwd_Mpts_s": RESULTS["reference_forward_backward"] / 1e6,
        "fwd_bwd_speedup": RESULTS["fused_forward_backward"] / RESULTS["reference_forward_backward"],
        "reference_chunked_forward_Mpts_s": RESULTS["reference_chunked_forward"] / 1e6,
        "forward_speedup_vs_chunked": RESULTS["fused_forward"] / RESULTS["reference_chunked_forward"],
        "reference_chunked_fwd_bwd_Mpts_s": RESULTS["reference_chunked_forward_backward"] / 1e6,
        "fwd_bwd_speedup_vs_chunked": RESULTS["fused_forward_backward"] / RESULTS["reference_chunked_forward_backward"],
        "gathers_M_s": RESULTS["gathers"] / 1e6,
        "roofline_Mpts_s": roofline / 1e6,
        "forward_fraction_of_roofline": RESULTS["fused_forward"] / roofline,
    }
    benchmark.extra_info.update(summary)
    benchmark.pedantic(time.perf_counter, rounds=1, iterations=1)
    print()
    for key, value in summary.items():
        print(f"  {key:32s} {value:10.3f}")
