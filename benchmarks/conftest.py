"""Shared benchmark plumbing: 2 threads, and a side-by-side summary.

Each benchmark records its throughput with ``record(group, impl, value, unit)``;
at the end of the run a table compares every implementation of a group with
the fused one, so ratios come from one run on one machine.
"""

from collections import defaultdict

import pytest
import torch

_RESULTS = defaultdict(dict)  # group -> impl -> (value, unit, extra)


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture
def record():
    def _record(group: str, impl: str, value, unit: str, **extra):
        if value is None:
            return
        _RESULTS[group][impl] = (value, unit, extra)

    return _record


def median_seconds(benchmark):
    """Median of the timed rounds, or None when benchmarks are disabled (CI smoke run)."""
    stats = getattr(benchmark, "stats", None)
    return stats.stats.median if stats is not None else None


def min_seconds(benchmark):
    """Fastest timed round, or None when benchmarks are disabled.

    For kernels that allocate a fresh output of tens of MB, single calls on
    this kind of VM are bimodal: the first touch of new pages costs as much as
    the kernel, or nothing when the allocator hands back warm memory. The
    minimum is the op's own cost; it is used alike for every implementation.
    """
    stats = getattr(benchmark, "stats", None)
    return stats.stats.min if stats is not None else None


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("s3d-fast side-by-side (higher is better; ratio = fused / other)")
    for group, impls in sorted(_RESULTS.items()):
        fused = impls.get("fused")
        parts = []
        for impl, (value, unit, extra) in impls.items():
            text = f"{impl} {value:,.3g} {unit}"
            if fused and impl != "fused" and value > 0:
                text += f" ({fused[0] / value:.1f}x)"
            for key, val in extra.items():
                text += f", {key} {val}"
            parts.append(text)
        tr.write_line(f"{group}: " + " | ".join(parts))
