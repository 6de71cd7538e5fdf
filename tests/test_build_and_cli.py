"""The extension's build decisions, its error messages, and the CLI."""

import json
import os
import subprocess
import sys

import pytest
import torch

from s3d_fast import _ext
from s3d_fast._ext import build
from s3d_fast.errors import ExtensionBuildError


def run_python(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)


def test_loaded_extension_reports_backends():
    info = _ext.info()
    assert "cpu" in info["backends"]
    assert os.path.exists(info["library"])
    assert hasattr(torch.ops.s3d_fast, "triplane_forward")


def test_forced_cpu_build(monkeypatch):
    monkeypatch.setenv("S3D_FAST_BUILD", "cpu")
    plan = build.make_plan()
    assert not plan.with_cuda and "S3D_FAST_BUILD=cpu" in plan.reason
    assert not any(s.endswith(".cu") for s in plan.sources)


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("S3D_FAST_BUILD", "metal")
    with pytest.raises(ExtensionBuildError, match="S3D_FAST_BUILD='metal'"):
        build.make_plan()


@pytest.mark.skipif(torch.version.cuda is not None, reason="checks the message of a CPU-only torch")
def test_forcing_cuda_with_cpu_torch_says_why(monkeypatch):
    monkeypatch.setenv("S3D_FAST_BUILD", "cuda")
    with pytest.raises(ExtensionBuildError, match="CPU-only build"):
        build.make_plan()


def test_missing_compiler_gives_the_fix(tmp_path):
    done = run_python(
        "from s3d_fast import _ext; _ext.load()",
        S3D_FAST_CACHE=str(tmp_path),
        S3D_FAST_BUILD="cpu",
        CXX="no-such-compiler-s3d",
    )
    assert done.returncode != 0
    assert "no C++ compiler ('no-such-compiler-s3d')" in done.stderr
    assert "apt-get install g++" in done.stderr


def test_doctor_json():
    done = subprocess.run([sys.executable, "-m", "s3d_fast", "doctor", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["torch"] == torch.__version__
    assert report["threads"] >= 1
    assert "cpu" in report["backends_built"]
    assert "cuda_build" in report


def test_cli_help_and_unknown_command():
    done = subprocess.run([sys.executable, "-m", "s3d_fast", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "doctor" in done.stdout
    done = subprocess.run([sys.executable, "-m", "s3d_fast", "levitate"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_test_aids_build_apart_from_the_extension():
    # The aids' library (benchmarks/aids/csrc) is built by the same machinery into
    # its own folder and namespace; the shipped extension registers none of it.
    from aids import extension

    plan = build.side_plan(extension.NAME, extension.CSRC)
    assert not plan.with_cuda and all(s.startswith(extension.CSRC) for s in plan.sources)
    assert build.build_dir(plan) != build.build_dir(build.make_plan())
    extension.load()
    _ext.load()
    names = torch._C._dispatch_get_all_op_names()
    assert "s3d_fast_aids::random_gather" in names
    assert not [n for n in names if n.startswith("s3d_fast::") and ("gather" in n or "decomposition" in n)]
