"""Hash-grid encoding: fused kernels vs the pure-PyTorch reference, and the
random-gather memory roofline, in one run.

Issue configuration: 2 threads, N = 2^18 points in [0, 1]^3, L = 16, F = 2,
T = 2^19, base resolution 16, per-level scale 1.5.

    PYTHONPATH=. python -m pytest benchmarks/bench_hashgrid.py -q -s

The side-by-side summary at the end of the run (benchmarks/conftest.py)
gives the speed-ups over the references and, as "gather roofline", the
fraction of the random-gather bound the fused forward reaches; ratios within
this one run.
"""

import pytest
import torch
from conftest import min_seconds

from aids.extension import random_gather_rate_probe
from s3d_fast import ops
from s3d_fast.ops import HashGridConfig

N = 1 << 18
CONFIG = HashGridConfig(
    n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5
)
LAYOUT = CONFIG.layout(3)
GATHERS_PER_POINT = CONFIG.n_levels * 2**3


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, 3, generator=g)
    params = torch.empty(LAYOUT.n_params).uniform_(-1e-4, 1e-4, generator=g)
    grad = torch.randn(N, LAYOUT.n_output_dims, generator=g)
    return x, params, grad


def _run(benchmark, record, group, impl, fn, rounds, count=N, warmup=True):
    """Times fn and records its points/s (count per call) in the summary."""
    if warmup:
        fn()  # the extension build on first use, first touch of buffers
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    seconds = min_seconds(benchmark)
    if seconds is None:  # --benchmark-disable: ran once, nothing to report
        return
    rate = count / seconds
    benchmark.extra_info["per_s"] = rate
    benchmark.extra_info["threads"] = torch.get_num_threads()
    record(group, impl, rate / 1e6, "M pts/s")


def _chunked(encode, chunk=1 << 15):
    """The reference over 2^15-point chunks: at N = 2^18 its (N, 8, 3) int64
    temporaries are tens of MB per level, and chunking is what a careful
    pure-PyTorch user would do; the conservative baseline."""

    def run(x, params, config):
        return torch.cat([encode(part, params, config) for part in x.split(chunk)])

    return run


def _fwd(encode, x, params):
    def fn():
        with torch.no_grad():
            encode(x, params, CONFIG)

    return fn


def _fwd_bwd(encode, x, params, grad):
    def fn():
        p = params.detach().requires_grad_()
        encode(x, p, CONFIG).backward(grad)

    return fn


@pytest.mark.benchmark(group="hashgrid-forward")
def test_fused_forward(benchmark, record, data):
    x, params, _ = data
    _run(benchmark, record, "hashgrid forward", "fused", _fwd(ops.hashgrid_encode, x, params), rounds=10)


@pytest.mark.benchmark(group="hashgrid-forward")
def test_reference_forward(benchmark, record, data):
    x, params, _ = data
    _run(
        benchmark,
        record,
        "hashgrid forward",
        "reference",
        _fwd(ops.reference.hashgrid_encode, x, params),
        rounds=2,
        warmup=False,
    )


@pytest.mark.benchmark(group="hashgrid-forward")
def test_reference_chunked_forward(benchmark, record, data):
    x, params, _ = data
    encode = _chunked(ops.reference.hashgrid_encode)
    _run(benchmark, record, "hashgrid forward", "chunked reference", _fwd(encode, x, params), rounds=2, warmup=False)


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_fused_forward_backward(benchmark, record, data):
    x, params, grad = data
    _run(
        benchmark,
        record,
        "hashgrid forward+backward",
        "fused",
        _fwd_bwd(ops.hashgrid_encode, x, params, grad),
        rounds=10,
    )


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_reference_forward_backward(benchmark, record, data):
    x, params, grad = data
    _run(
        benchmark,
        record,
        "hashgrid forward+backward",
        "reference",
        _fwd_bwd(ops.reference.hashgrid_encode, x, params, grad),
        rounds=2,
        warmup=False,
    )


@pytest.mark.benchmark(group="hashgrid-forward-backward")
def test_reference_chunked_forward_backward(benchmark, record, data):
    x, params, grad = data
    encode = _chunked(ops.reference.hashgrid_encode)
    _run(
        benchmark,
        record,
        "hashgrid forward+backward",
        "chunked reference",
        _fwd_bwd(encode, x, params, grad),
        rounds=2,
        warmup=False,
    )


@pytest.mark.benchmark(group="hashgrid-roofline")
def test_random_gather_roofline(benchmark, record, data):
    """n random 8-byte gathers from a table as large as the encoding's: the
    memory bound, recorded as points/s at GATHERS_PER_POINT gathers a point."""
    _, params, _ = data
    table = params.view(-1, 2)
    n = N * GATHERS_PER_POINT
    _run(
        benchmark,
        record,
        "hashgrid forward",
        "gather roofline",
        lambda: random_gather_rate_probe(table, n),
        rounds=5,
        count=N,
    )
    benchmark.extra_info["table_MB"] = LAYOUT.n_params * 4 / 2**20
