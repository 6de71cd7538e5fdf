"""``s3d-fast eval``: one-shot evaluation of a generator checkpoint on held-out identities
(docs/evaluation.md)."""

from __future__ import annotations

import argparse

from ..render.cli import ADAPT_STEPS
from ..render.limits import check_adapt_steps, check_batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        help="a run folder (its newest checkpoint) or a checkpoint folder (with --portraits: default the bundled demo)",
    )
    parser.add_argument("--data", help="data set folder (manifest.json)")
    parser.add_argument(
        "--portraits",
        metavar="FOLDER",
        help="instead of --data: photos without a ground-truth video, each spoken with --speech (docs/evaluation.md)",
    )
    parser.add_argument("--speech", metavar="WAV", help="with --portraits: the speech (default: the bundled demo's)")
    parser.add_argument(
        "--model-only",
        action="store_true",
        help="with --portraits: frames as the model paints them, without keeping the photo (render --model-only)",
    )
    parser.add_argument(
        "--split",
        default="heldout",
        choices=("heldout", "train"),
        help="clips to evaluate (default heldout: identities never trained on)",
    )
    parser.add_argument("--out", help="output folder (default RUN/eval_step_N)")
    parser.add_argument("--clips", type=int, help="evaluate only the first K clips of the split")
    parser.add_argument("--frames", type=int, help="evaluate only the first N frames of each clip")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--baked",
        action="store_true",
        help="render with the real-time path (baked occupancy grid) instead of the training-style one",
    )
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=ADAPT_STEPS,
        metavar="N",
        help="refine what the model encoded of each source for N steps at bake time so it redraws it, "
        f"as render does (default {ADAPT_STEPS}; 0: off)",
    )
    parser.add_argument("--batch", type=int, default=4, help="frames per render call, 1-64 (default 4)")
    parser.add_argument("--syncnet", help="lip-sync expert weights (default RUN/syncnet.safetensors)")
    parser.add_argument(
        "--no-identity",
        dest="identity",
        action="store_false",
        help="skip the identity scores (dlib's face embedding: about 1 s per clip)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines (the result table is still printed)")


def run(args) -> int:
    from ..atomic import output_folder
    from ..errors import S3DError
    from .evaluate import evaluate  # chosen: only now load torch and the model

    check_adapt_steps(args.adapt_steps, "--adapt-steps")
    check_batch(args.batch, "--batch")
    if args.portraits is not None:
        if args.data is not None:
            raise S3DError("give either --data (clips with ground truth) or --portraits (photos), not both")
        from ..render.assets import DEMO_SPEECH
        from .portraits import evaluate_portraits

        args.speech = args.speech or DEMO_SPEECH
        if args.out is None:
            return evaluate_portraits(args)
        with output_folder(args.out):
            return evaluate_portraits(args)
    if args.data is None or args.checkpoint is None:
        raise S3DError("--data and --checkpoint are required (or --portraits FOLDER for photos)")
    if args.out is None:
        return evaluate(args)
    with output_folder(args.out):  # checked before the model loads; removed again if left empty
        return evaluate(args)
