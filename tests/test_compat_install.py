"""The import redirection as a user's script meets it: ``python -m s3d_fast.compat
script.py`` and ``s3d_fast.compat.install()``, each in a fresh interpreter."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from s3d_fast.compat.install import why_redirect

REPO = Path(__file__).resolve().parents[1]

# An unchanged nerfacc-style script: imports by the paths nerfacc's examples use.
USER_SCRIPT = """
import json, sys
import torch
import nerfacc
from nerfacc.estimators.occ_grid import OccGridEstimator
from nerfacc.volrend import rendering
import nerfacc.estimators.prop_net, nerfacc.grid, nerfacc.pack, nerfacc.scan, nerfacc.pdf, nerfacc.data_specs

estimator = OccGridEstimator(roi_aabb=[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=16, levels=1)
estimator.binaries[:] = True
rays_o = torch.tensor([[0.0, 0.0, -3.0]]).repeat(4, 1)
rays_d = torch.tensor([[0.0, 0.0, 1.0]]).repeat(4, 1)
ray_indices, t_starts, t_ends = estimator.sampling(rays_o, rays_d, render_step_size=0.1)

def rgb_sigma_fn(t_starts, t_ends, ray_indices):
    return torch.ones(t_starts.shape[0], 3), torch.full_like(t_starts, 2.0)

colors, opacities, depths, extras = rendering(t_starts, t_ends, ray_indices, n_rays=4, rgb_sigma_fn=rgb_sigma_fn)
print(json.dumps({
    "module": nerfacc.__name__,
    "same_class": OccGridEstimator is nerfacc.OccGridEstimator,
    "submodule": sys.modules["nerfacc.estimators.occ_grid"].__name__,
    "samples": int(ray_indices.numel()),
    "opacity": float(opacities.min()),
    "argv": sys.argv,
}))
"""


def run(args, tmp_path, script=USER_SCRIPT, check=True):
    path = tmp_path / "user_script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, *[str(path) if a == "SCRIPT" else a for a in args]]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def check_report(proc):
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["module"] == "s3d_fast.compat.nerfacc"
    assert report["submodule"] == "s3d_fast.compat.nerfacc.estimators.occ_grid" and report["same_class"]
    assert report["samples"] == 4 * 20  # the 2-unit box in steps of 0.1
    assert report["opacity"] > 0.98
    return report


def test_python_m_runs_an_unchanged_script(tmp_path):
    proc = run(["-m", "s3d_fast.compat", "--verbose", "SCRIPT", "--lr", "1e-2"], tmp_path)
    report = check_report(proc)
    assert report["argv"][1:] == ["--lr", "1e-2"] and report["argv"][0].endswith("user_script.py")
    if not torch.cuda.is_available():
        assert "no usable CUDA" in proc.stderr or "not installed" in proc.stderr


def test_install_inside_a_script(tmp_path):
    check_report(run(["SCRIPT"], tmp_path, "from s3d_fast.compat import install\ninstall()\n" + USER_SCRIPT))


def test_force_replaces_a_real_nerfacc_already_imported(tmp_path):
    if importlib.util.find_spec("nerfacc") is None:
        pytest.fail("nerfacc==0.5.3 is a test dependency (pip install -e .[test])")
    prelude = (
        "import nerfacc as real\nassert real.__name__ == 'nerfacc'\n"
        "from s3d_fast.compat import install\nprint(install(force=True))\n"
    )
    check_report(run(["SCRIPT"], tmp_path, prelude + USER_SCRIPT))


def test_tinycudann_and_missing_submodules(tmp_path):
    script = """
    import json
    from s3d_fast.compat import install
    install(force=True)
    out = {}
    for name in ("tinycudann", "nerfacc.no_such_module"):
        try:
            out[name] = __import__(name).__name__
        except ImportError as error:
            out[name] = f"{type(error).__name__}: {error}"
    print(json.dumps(out))
    """
    out = json.loads(run(["SCRIPT"], tmp_path, script).stdout.strip().splitlines()[-1])
    if importlib.util.find_spec("s3d_fast.compat.tinycudann") is None:
        assert out["tinycudann"].startswith("ModuleNotFoundError: tinycudann: redirected")
        assert "s3d_fast.compat.tinycudann" in out["tinycudann"]
    else:
        assert out["tinycudann"] == "s3d_fast.compat.tinycudann"
    assert out["nerfacc.no_such_module"].startswith("ModuleNotFoundError")
    assert "no_such_module" in out["nerfacc.no_such_module"]


def test_command_line_help_and_errors(tmp_path):
    helped = run(["-m", "s3d_fast.compat", "--help"], tmp_path)
    assert helped.stdout.startswith("usage: python -m s3d_fast.compat") and "--force" in helped.stdout
    missing = run(["-m", "s3d_fast.compat", "no_such_script.py"], tmp_path, check=False)
    assert missing.returncode == 2 and "no such script" in missing.stderr
    bad = run(["-m", "s3d_fast.compat", "--frobnicate", "SCRIPT"], tmp_path, check=False)
    assert bad.returncode == 2 and "--frobnicate" in bad.stderr


def test_reasons_for_redirecting(monkeypatch):
    assert why_redirect("surely_not_an_installed_package") == "surely_not_an_installed_package is not installed"
    if importlib.util.find_spec("nerfacc") is None:
        pytest.fail("nerfacc==0.5.3 is a test dependency (pip install -e .[test])")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no usable CUDA" in why_redirect("nerfacc")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert why_redirect("nerfacc") is None  # the real one runs: keep it
