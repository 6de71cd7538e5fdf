"""Test and benchmark aids: workloads, memory measurement and a small C++ library
(``extension``) that tests and benchmarks use and the s3d_fast package never ships.

Importable as ``aids`` from ``tests/`` and ``benchmarks/`` (pytest puts
``benchmarks/`` on ``sys.path``, see pyproject.toml).
"""
