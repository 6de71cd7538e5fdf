"""Copy a trained generator into the package as the bundled demo checkpoint.

    python tools/export_demo_checkpoint.py RUN [--out s3d_fast/assets/demo/checkpoint]

Takes RUN's newest checkpoint (or a checkpoint folder), keeps the weights and the config
(no optimizer state: the demo only renders), checks that it loads, and prints its size;
`s3d-fast render` with no arguments uses it. The README gives the command that trains RUN.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a clone without installing

from s3d_fast.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint  # noqa: E402
from s3d_fast.config import apply_overrides, config_to_dict, load_config  # noqa: E402
from s3d_fast.model import load_model  # noqa: E402

DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "s3d_fast", "assets", "demo", "checkpoint")
LIMIT_MB = 20.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder (its newest checkpoint) or a checkpoint folder")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change an inference setting, e.g. model.march_steps=40 (the weights stay as trained)",
    )
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(resolve_checkpoint(args.run))
    if args.overrides:
        ckpt.config = config_to_dict(apply_overrides(load_config(ckpt.config), args.overrides))
    extra = dict(ckpt.extra, exported_from=os.path.basename(os.path.normpath(str(ckpt.path))))
    out = save_checkpoint(
        args.out, model_state=ckpt.model_state, config=ckpt.config, step=ckpt.step, extra=extra, rng=False
    )
    load_model(out)  # it must load as a generator
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 2**20
    print(f"wrote {out} (step {ckpt.step}, {size:.1f} MB)")
    if size > LIMIT_MB:
        print(f"error: the demo checkpoint must stay under {LIMIT_MB:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
