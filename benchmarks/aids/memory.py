"""Peak host memory of one call, measured from the kernel's page accounting.

CPU tensors come from malloc, which no Python tool sees; the process's
resident-set high-water mark (VmHWM) does. It is reset through
/proc/self/clear_refs, the call runs once, and the rise of the high-water mark
over the resident set before the call is its peak extra memory. Run it in a
fresh process (``measure_in_subprocess``) so that pages freed by earlier work
and kept by the allocator do not hide allocations.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {key}")
    return int(match.group(1))


def supported() -> bool:
    return os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)


def peak_bytes_during(fn) -> tuple[int, object]:
    """(peak resident bytes above the state before ``fn()``, fn's result)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current VmRSS
    before = _status_kib("VmRSS")
    result = fn()
    return (_status_kib("VmHWM") - before) * 1024, result


def measure_in_subprocess(module: str, *args: str) -> dict:
    """Run ``python -m module args...`` (a module of the aids, or any importable
    one) and parse the JSON it prints last."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    # The aids are not installed; the child finds them where this process did.
    aids_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (aids_parent, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
