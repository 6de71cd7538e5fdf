import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The tiny SynthTalk set (``model_helpers.make_tiny_synthtalk``), made once per session:
    tests read it, and copy it before changing anything (a module may define its own)."""
    from model_helpers import make_tiny_synthtalk

    out = tmp_path_factory.mktemp("synthtalk") / "ds"
    make_tiny_synthtalk(out)
    return out
