import os

import pytest
import torch


def pytest_configure(config):
    # Under pytest-xdist (`pytest -n 2`) each worker owns one of the two cores: two OpenMP
    # threads per worker would spin-wait on each other. A test that needs more sets them.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Train in one intra-op thread, as each --nproc worker on two cores does. On a busy
    shared CPU, two OpenMP threads spin-wait on each other: the lip-sync stage test took
    135-150 s beside four CPU-bound processes with two threads, 55 s with one (25 s idle)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The tiny SynthTalk set (``model_helpers.make_tiny_synthtalk``), made once per session:
    tests read it, and copy it before changing anything (a module may define its own)."""
    from model_helpers import make_tiny_synthtalk

    out = tmp_path_factory.mktemp("synthtalk") / "ds"
    make_tiny_synthtalk(out)
    return out
