"""The ``s3d-fast`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``
and is imported only when chosen, so ``s3d-fast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .errors import S3DError, Terminated, handle_sigterm

# name -> (module, one-line help)
SUBCOMMANDS = {
    "render": (
        "s3d_fast.render.cli",
        "image + speech -> lip-synced free-view talking-head video (no arguments: the demo)",
    ),
    "doctor": ("s3d_fast.doctor", "report the torch setup and which kernel backends are built"),
    "synth": ("s3d_fast.data.synthtalk.cli", "generate a SynthTalk data set of procedural talking heads"),
    "train": ("s3d_fast.training.cli", "train the S^3D-NeRF model on a data set (lip-sync expert, then generator)"),
    "preprocess": (
        "s3d_fast.data.preprocess.cli",
        "turn real talking-head videos into a data set (mediapipe face mesh)",
    ),
    "eval": (
        "s3d_fast.evaluation.cli",
        "one-shot evaluation on held-out identities: PSNR/SSIM, mouth, lip sync, novel view, fps",
    ),
    "serve": ("s3d_fast.serve.cli", "a live talking head in the browser: portrait + speech, camera under the mouse"),
}


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="s3d-fast",
        description="One-shot speech-driven talking-head NeRF on fused CPU/CUDA kernels.",
    )
    parser.add_argument("--version", action="version", version=f"s3d-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(command)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handle_sigterm()
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except S3DError as exc:
        print(f"s3d-fast {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"s3d-fast {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"s3d-fast {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
