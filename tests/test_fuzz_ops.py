"""Property-based fuzzing of every op (tests/fuzz_ops.py): each property runs in
its own child process with a fixed seed, so a crash fails its test instead of
killing pytest and a failure reproduces. S3D_FUZZ_EXAMPLES sets the examples per
op (default 50); .ci/run runs this file once more on the extension built with
AddressSanitizer and UndefinedBehaviorSanitizer (S3D_FAST_SANITIZE=1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_ops import DEFAULT_EXAMPLES, PROPERTIES

from s3d_fast import ops

ROOT = Path(__file__).resolve().parents[1]
# The lines of a sanitizer report that say what and where (the stack follows them).
SANITIZER_WORDS = ("ERROR: AddressSanitizer", "SUMMARY:", "runtime error:")
EXAMPLES = int(os.environ.get("S3D_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


def _run(prop: str) -> tuple[subprocess.CompletedProcess, list]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    script = ROOT / "tests" / "fuzz_ops.py"
    cmd = [sys.executable, str(script), prop, "--examples", str(EXAMPLES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, lines


@pytest.mark.parametrize("prop", sorted(PROPERTIES))
def test_fuzzed_inputs_give_the_reference_or_a_clear_error(prop):
    proc, lines = _run(prop)
    outcome = lines[-1] if lines and "ok" in lines[-1] else None
    if outcome is None:  # the child died: a crash, an abort or a sanitizer report
        last = lines[-1]["example"] if lines else "before the first example"
        found = [line for line in proc.stderr.splitlines() if any(k in line for k in SANITIZER_WORDS)]
        report = "\n".join(found[:6]) + "\n" + proc.stderr[-3000:]
        pytest.fail(f"the fuzzing process died (code {proc.returncode}) during {last}:\n{report}")
    assert outcome["ok"], f"{prop}: {outcome['error']}"
    assert outcome["examples"] >= EXAMPLES
    # The strategies draw valid arguments: a refusal would mean an op turned down a legal call.
    assert outcome["refused"] == 0, outcome["refusals"]


def test_every_public_op_is_fuzzed():
    public = {name for name in ops.__all__ if callable(getattr(ops, name)) and name != "HashGridConfig"}
    covered = set(PROPERTIES) | {"unpack_bits"}  # pack_bits' property round-trips through unpack_bits
    assert public <= covered, sorted(public - covered)
