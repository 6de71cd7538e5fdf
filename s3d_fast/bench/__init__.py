"""Benchmark workloads and measurement helpers shared by ``benchmarks/`` and tests."""
