"""``s3d-fast doctor``: what this installation can run, and why not."""

from __future__ import annotations

import json
import platform
import sys


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-build", action="store_true", help="do not compile the kernels if they are not built yet")


def collect(build: bool = True) -> dict:
    import torch

    from . import _ext
    from ._ext import build as ext_build
    from .version import __version__

    report = {
        "s3d_fast": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "threads": torch.get_num_threads(),
        "parallel_backend": torch.__config__.parallel_info().splitlines()[-1].strip(),
    }
    try:
        plan = ext_build.make_plan()
        report["cuda_build"] = plan.reason
        report["cache"] = ext_build.build_dir(plan)
        if build:
            info = _ext.info()
            report["backends_built"] = info["backends"]
            report["library"] = info["library"]
            if "cuda" in info["backends"]:
                report["cuda_arch_list"] = info["arch_list"]
        else:
            report["backends_built"] = "not checked (--no-build)"
    except Exception as exc:  # doctor reports problems rather than dying on them
        report["backends_built"] = []
        report["extension_error"] = str(exc)
    return report


def run(args) -> int:
    report = collect(build=not args.no_build)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            if isinstance(value, list):
                value = ", ".join(value) if value else "none"
            print(f"{key.ljust(width)}  {value}")
    return 1 if "extension_error" in report else 0
