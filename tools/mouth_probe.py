"""Where a checkpoint loses the jaw: follow SynthTalk's jaw viseme through the generator.

For each held-out clip (one-shot, the source chosen as ``s3d-fast eval`` chooses it), the
Pearson correlation of the jaw viseme with
- ``tokens``: a ridge probe of the audio encoder's tokens, fitted on training clips (is
  the jaw in what the audio path hears?);
- ``motion``: the rendered backward offset (y, in units of ``max_offset``), averaged over
  the clip's mouth box at NeRF resolution (does the speech move the radiance field?);
- ``field``: the pixel rule (``metrics.mouth_opening``) on the radiance field's own colour
  image, upsampled (does the moved field show an open mouth?);
- ``cavity`` (models with ``mouth_cavity``): the rendered cavity share summed over the
  mouth box at NeRF resolution (does the field say where it looks into the mouth?);
- ``output``: the pixel rule on the super-resolved frame, the figure ``s3d-fast eval``
  reports as the mouth-opening correlation.

    python tools/mouth_probe.py --checkpoint RUN/checkpoints/step_N --data data/st24

Only SynthTalk data (it needs the jaw viseme). Prints a table and the means; given several
checkpoints, a row of means for each, or with ``--average`` one row for the model whose
weights are their mean (``train.average_last`` after the fact). ``--open-mouth`` renders
with ``model.cavity_opening`` on, as the demo schedule's later phases and ``s3d-fast
render`` do, for checkpoints of the cavity's own phase.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

from s3d_fast.checkpoint import load_checkpoint, load_model_state, resolve_checkpoint
from s3d_fast.data.dataset import ClipStore, load_manifest
from s3d_fast.errors import S3DError
from s3d_fast.evaluation.rendering import one_shot_source, render_clip, source_frame
from s3d_fast.metrics import mouth_opening, mouth_region, pearson
from s3d_fast.model import load_model
from s3d_fast.model.superres import MOTION_CHANNELS

OFFSET_Y = -MOTION_CHANNELS + 1  # the rendered features end with offset x, y, z and the score


def ridge_probe(x_fit, y_fit, penalty: float = 0.01):
    """A linear read-out of y from standardised x; the ridge penalty is ``penalty`` per sample."""
    mu, sd = x_fit.mean(0), x_fit.std(0) + 1e-6
    z = (x_fit - mu) / sd
    w = np.linalg.solve(z.T @ z + penalty * len(z) * np.eye(z.shape[1]), z.T @ (y_fit - y_fit.mean()))
    return lambda x: ((x - mu) / sd) @ w


@torch.no_grad()
def audio_tokens(model, data, frames: int) -> np.ndarray:
    mel = torch.as_tensor(data["mel"][:frames], dtype=torch.float32)
    return model.audio_tokens(mel).flatten(1).numpy()


def render_with_features(model, data, frames: int, batch: int = 5):
    """Frames (T, 3, Ro, Ro) rendered as ``s3d-fast eval`` renders them, the feature
    image (T, C, r, r) super-resolution saw, and the rendered cavity share (T, r, r), or
    None for a model without ``mouth_cavity``."""
    with torch.inference_mode():
        source = one_shot_source(model, data, source_frame(data, frames), "cpu")
    seen = []
    hook = model.superres.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        out = render_clip(model, source, data["mel"][:frames], data["c2w"][:frames], data["K"], batch)
    finally:
        hook.remove()
    return out["rgb"], torch.cat(seen), out["cavity"]


def probe(model, manifest, clips: int, frames: int, fit_clips: int) -> list:
    store = ClipStore(manifest, capacity=1)
    fit = sorted(manifest.clips_in("train"), key=lambda c: c["id"])
    fit = fit[:: max(1, len(fit) // fit_clips)][:fit_clips]
    held = sorted(manifest.clips_in("heldout"), key=lambda c: c["id"])[:clips]
    if not fit or not held:
        raise S3DError(f"{manifest.root}: the probe needs training and held-out clips")
    xs, ys = [], []
    for clip in fit:
        data = store.get(clip)
        if "visemes" not in data:
            raise S3DError(f"{manifest.root}: clip {clip['id']} has no visemes (the probe needs SynthTalk)")
        n = min(frames, clip["n_frames"])
        xs.append(audio_tokens(model, data, n))
        ys.append(data["visemes"][:n, 0])
    read_jaw = ridge_probe(np.concatenate(xs), np.concatenate(ys))
    rows = []
    for clip in held:
        data = store.get(clip)
        n = min(frames, clip["n_frames"])
        jaw = data["visemes"][:n, 0]
        box = mouth_region(data["masks"][:n])
        rgb, features, cavity = render_with_features(model, data, n)
        H, r = data["frames"].shape[1], features.shape[-1]
        y0, y1, x0, x1 = (int(v * r / H) for v in box)
        motion = features[:, OFFSET_Y, y0 : y1 + 1, x0 : x1 + 1].mean((1, 2)).numpy()
        field = F.interpolate(features[:, :3].clamp(0, 1), size=(H, H), mode="bilinear", align_corners=False)
        row = {
            "clip": clip["id"],
            "tokens": pearson(read_jaw(audio_tokens(model, data, n)), jaw),
            "motion": pearson(motion, jaw),
            "field": pearson(mouth_opening(field, box), jaw),
        }
        if cavity is not None:
            row["cavity"] = pearson(cavity[:, y0 : y1 + 1, x0 : x1 + 1].sum((1, 2)).numpy(), jaw)
        row["output"] = pearson(mouth_opening(rgb, box), jaw)
        rows.append(row)
    return rows


def averaged_model(paths):
    """The generator of the last of ``paths`` with every floating weight the mean of the
    checkpoints' (each a checkpoint or run folder of the same model)."""
    model = load_model(paths[-1])
    states = [load_checkpoint(resolve_checkpoint(p)).model_state for p in paths]
    mean = {}
    for name, value in states[-1].items():
        if value.is_floating_point():
            mean[name] = (sum(s[name].double() for s in states) / len(states)).to(value.dtype)
        else:
            mean[name] = value
    load_model_state(model, mean)
    return model


def clip_means(rows) -> dict:
    """Each figure's mean over the clips' rows."""
    return {k: np.mean([r[k] for r in rows]) for k in rows[0] if k != "clip"}


def print_rows(rows, label: str) -> None:
    """A markdown table, a row per dict; a column a row lacks (no cavity) shows "-"."""
    keys = tuple(dict.fromkeys(k for row in rows for k in row if k != label))
    print(f"| {label} | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row[label]} | " + " | ".join(f"{row[k]:.2f}" if k in row else "-" for k in keys) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        help="a run folder (its newest checkpoint) or a checkpoint folder; repeat it for several",
    )
    parser.add_argument("--average", action="store_true", help="probe one model: the checkpoints' mean weights")
    parser.add_argument("--open-mouth", action="store_true", help="render with model.cavity_opening on")
    parser.add_argument("--data", required=True, help="a SynthTalk data set folder")
    parser.add_argument("--clips", type=int, default=8, help="held-out clips to render (default 8)")
    parser.add_argument("--frames", type=int, default=50, help="frames per clip (default 50)")
    parser.add_argument("--fit-clips", type=int, default=24, help="training clips the token probe is fitted on")
    args = parser.parse_args(argv)
    try:
        if min(args.clips, args.frames, args.fit_clips) < 2:
            raise S3DError("--clips, --frames and --fit-clips must be at least 2")
        manifest = load_manifest(args.data)
        # One model for --average, else one per checkpoint, each loaded when its turn comes.
        models = [averaged_model(args.checkpoint)] if args.average else (load_model(p) for p in args.checkpoint)
        results = []
        for model in models:
            if args.open_mouth:
                model.cfg.cavity_opening = model.cfg.mouth_cavity
            results.append(probe(model, manifest, args.clips, args.frames, args.fit_clips))
    except S3DError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if len(results) == 1:
        print_rows(results[0] + [{"clip": "**mean**", **clip_means(results[0])}], "clip")
    else:
        print_rows(
            [{"checkpoint": path, **clip_means(rows)} for path, rows in zip(args.checkpoint, results)], "checkpoint"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
