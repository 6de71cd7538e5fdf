"""``s3d-fast train``: stage 1 the lip-sync expert, stage 2 the generator.

Single process, or several through torchrun (``--nproc K`` launches them, each running
``python -m s3d_fast.training``): DistributedDataParallel with gloo on CPUs and NCCL on
GPUs. Run layout: RUN/config.json (the resolved config), RUN/syncnet.safetensors (stage 1),
RUN/checkpoints/step_N/ (generator checkpoints), RUN/metrics.csv, RUN/curves.png,
RUN/profile.txt.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..config import CONFIGS
from ..errors import S3DError, Terminated, handle_sigterm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data set folder (manifest.json): SynthTalk or preprocessed video")
    parser.add_argument("--out", help="run folder: checkpoints, metrics.csv, curves.png")
    parser.add_argument("--config", default="small", help=f"{' | '.join(CONFIGS)} (default small)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)",
    )
    parser.add_argument("--steps", type=int, help="generator steps (default: the config's train.steps)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="start this run from a checkpoint's weights (a checkpoint or run folder, e.g. the "
        "bundled s3d_fast/assets/demo/checkpoint): its model settings, fresh optimizer and "
        "schedule from step 0; parameters that --set model options add start untrained",
    )
    parser.add_argument("--minutes", type=float, help="stop (with a checkpoint) after this much wall time")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="torch.use_deterministic_algorithms(True) in every training process (sets "
        "train.deterministic, kept by --resume): CUDA gradients without float atomics, so a "
        "resumed run repeats an uninterrupted one bit for bit on the same GPU",
    )
    parser.add_argument("--nproc", type=int, default=1, help="processes (DistributedDataParallel through torchrun)")
    parser.add_argument(
        "--profile-steps",
        type=int,
        default=0,
        metavar="N",
        help="after training, profile N more forward+backward passes (no update) and write the "
        "share of each model stage to RUN/profile.txt",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from .command import train  # chosen: torch and the model load only now

    return train(args)


def main(argv=None) -> int:
    """Entry point for ``python -m s3d_fast.training`` (what torchrun launches)."""
    parser = argparse.ArgumentParser(prog="s3d_fast.training")
    add_arguments(parser)
    args = parser.parse_args(argv)
    handle_sigterm()
    try:
        return run(args)
    except S3DError as exc:
        print(f"s3d-fast train: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130
