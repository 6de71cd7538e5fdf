"""``python -m s3d_fast.compat [--force] SCRIPT.py [ARGS...]``: run a script with
``import tinycudann`` / ``import nerfacc`` resolved to s3d-fast's drop-ins."""

from __future__ import annotations

import os
import runpy
import sys

from .install import install

USAGE = """usage: python -m s3d_fast.compat [--force] [--verbose] SCRIPT.py [ARGS...]

Run SCRIPT.py as `python SCRIPT.py ARGS...` would, with `import tinycudann` and
`import nerfacc` (and nerfacc's submodules) resolved to s3d_fast.compat's drop-ins
where the real package is absent or cannot run here (no usable CUDA).

options:
  --force     redirect even where the real packages would run
  --verbose   print which packages are redirected, and why, to stderr
  -h, --help  show this help and exit
"""


def main(argv: list[str]) -> int:
    force = verbose = False
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0)
        if flag in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        if flag == "--force":
            force = True
        elif flag == "--verbose":
            verbose = True
        else:
            print(f"s3d_fast.compat: unknown option {flag}\n{USAGE}", end="", file=sys.stderr)
            return 2
    if not argv:
        print(f"s3d_fast.compat: name the script to run\n{USAGE}", end="", file=sys.stderr)
        return 2
    script = argv[0]
    if not os.path.isfile(script):
        print(f"s3d_fast.compat: no such script: {script}", file=sys.stderr)
        return 2
    redirected = install(force=force)
    if verbose:
        for name, why in redirected.items():
            print(f"s3d_fast.compat: {name} -> s3d_fast.compat.{name} ({why})", file=sys.stderr)
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT.py` sets it
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
