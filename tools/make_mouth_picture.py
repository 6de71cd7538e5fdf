"""Write docs/images/mouth_opening.png, the README's first picture.

    python tools/make_mouth_picture.py --data data/st24
    python tools/make_mouth_picture.py --data data/st24 --checkpoint runs/demo --out mouths.png

Per held-out identity (its first clip), the ground truth above the checkpoint's frames,
one-shot as ``s3d-fast eval`` renders them (the source adapted for ``--adapt-steps``), at
the clip's least open, median and three most open frames by SynthTalk's jaw viseme, cropped
around the mouth. Deterministic on one machine.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a clone without installing

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from s3d_fast.data.dataset import ClipStore  # noqa: E402
from s3d_fast.data.manifest import load_manifest  # noqa: E402
from s3d_fast.evaluation.rendering import adapted_source, render_clip, source_frame  # noqa: E402
from s3d_fast.evaluation.scores import fit_size  # noqa: E402
from s3d_fast.metrics import mouth_region  # noqa: E402
from s3d_fast.model import load_model  # noqa: E402
from s3d_fast.render.api import DEMO_CHECKPOINT  # noqa: E402

FRAMES = 50  # as the README's held-out figures
HALF_HEIGHT, HALF_WIDTH = 26, 40  # the crop around the mouth region's centre, pixels of 256


def mouth_rows(model, data: dict, adapt_steps: int) -> list[np.ndarray]:
    gt = data["frames"][:FRAMES]
    source, _ = adapted_source(model, data, source_frame(data, len(gt)), "cpu", adapt_steps)
    with torch.inference_mode():
        rgb = render_clip(model, source, data["mel"][: len(gt)], data["c2w"][: len(gt)], data["K"], 4)["rgb"]
    ours = (fit_size(rgb, gt.shape[1]).permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    order = np.argsort(data["visemes"][: len(gt), 0], kind="stable")
    picks = [order[0], order[len(order) // 2], *order[-3:]]
    y0, y1, x0, x1 = mouth_region(data["masks"][: len(gt)])
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    box = (slice(max(0, cy - HALF_HEIGHT), cy + HALF_HEIGHT), slice(max(0, cx - HALF_WIDTH), cx + HALF_WIDTH))
    return [np.concatenate([frames[i][box] for i in picks], 1) for frames in (gt, ours)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a SynthTalk data set with held-out clips (data/st24)")
    parser.add_argument("--checkpoint", default=DEMO_CHECKPOINT)
    parser.add_argument("--adapt-steps", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs", "images", "mouth_opening.png"))
    args = parser.parse_args(argv)
    manifest = load_manifest(args.data)
    clips = sorted(manifest.clips_in("heldout"), key=lambda c: c["id"])
    firsts = [c for i, c in enumerate(clips) if all(c["identity"] != o["identity"] for o in clips[:i])]
    if not firsts:
        parser.error(f"{args.data}: no held-out clips")
    model = load_model(args.checkpoint, "cpu")
    store = ClipStore(manifest, capacity=1, views=False)
    rows = [row for clip in firsts for row in mouth_rows(model, store.get(clip), args.adapt_steps)]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out} ({len(firsts)} identities)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
