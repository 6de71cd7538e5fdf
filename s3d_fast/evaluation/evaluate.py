"""``s3d-fast eval``'s protocol: every clip of a split rendered one-shot and scored.

For every clip, the source is ONE frame of that clip, the one with the smallest jaw
opening (SynthTalk's jaw viseme; on real data the smallest pixel-rule mouth opening)
among frames with a usable face; every frame of the clip is then rendered from its own
audio window and camera (training-style rendering without jitter, batched over frames,
or with ``--baked`` the real-time path) and compared with the ground truth. The same
frames are rendered again with the audio replaced by the log-mel of silence, and, where
the data set has extra cameras, from the first extra view (docs/evaluation.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import ClipStore
from ..metrics import mouth_opening, mouth_region, pearson
from ..metrics.landmarks import landmark_distance
from ..metrics.mouth import default_region
from ..metrics.sync import shift_audio, sync_scores
from ..model.syncnet import N_FRAMES
from ..render.stats import synchronize
from .identity import between_identities, identity_scores
from .rendering import adapted_source, render_clip, silent_mel, source_frame
from .report import format_table, write_outputs
from .scores import fit_size, image_metrics, mouth_landmarks, to_tensor
from .setup import Setup, load_setup

SHIFT_FRAMES = 25  # the "audio shifted by 1 s" sync baseline, at 25 fps
GRID_CLIPS = 3
GRID_FRAMES = 4


def evaluate_clip(setup: Setup, store, clip: dict, args, keep_for_grid: bool, fps_training_too: bool) -> dict:
    model, dev = setup.model, setup.device
    data = store.get(clip)
    T = clip["n_frames"] if args.frames is None else min(clip["n_frames"], args.frames)
    gt_u8 = data["frames"][:T]
    H = gt_u8.shape[1]
    masks = data["masks"][:T]
    valid = np.asarray(data["valid"][:T], bool)
    real = "visemes" not in data
    src = source_frame(data, T)
    row = {"clip": clip["id"], "identity": clip["identity"], "frames": T, "source_frame": src}

    synchronize(dev)
    start = time.perf_counter()
    source, adaptation = adapted_source(model, data, src, dev, args.adapt_steps)
    if adaptation is not None:
        row.update(adapt_seconds=adaptation.seconds, adapt_l1_before=adaptation.before, adapt_l1_after=adaptation.after)
    with torch.inference_mode():
        baked = model.bake(source) if args.baked else None
        synchronize(dev)
        row["source_seconds"] = time.perf_counter() - start
    c2w, K, mel = data["c2w"][:T], data["K"], data["mel"][:T]
    main = render_clip(model, source, mel, c2w, K, args.batch, baked, keep_score=keep_for_grid)
    row["render_seconds"] = main["seconds"]
    row["fps"] = T / main["seconds"]
    if args.baked:
        row["baked_fps"] = row["fps"]
        row["occupied_fraction"] = baked.occupied_fraction
        if fps_training_too:
            row["training_fps"] = T / render_clip(model, source, mel, c2w, K, args.batch)["seconds"]
    else:
        row["training_fps"] = row["fps"]

    gt = to_tensor(gt_u8)
    ours = fit_size(main["rgb"], H)
    # The source frame itself is left out of the image metrics: copying it is no test.
    scored = valid.copy()
    scored[src] = False
    lips_box = mouth_region(masks)
    row.update(image_metrics(gt, ours, lips_box, scored))
    # The baseline every model must beat: the source frame itself, unmoved, as every frame.
    copy = image_metrics(gt, gt[src : src + 1].expand_as(gt), lips_box, scored)
    row.update({f"{k}_copy": v for k, v in copy.items()})

    g_lm, o_lm, rule_lm = mouth_landmarks(gt_u8, ours, masks, real)
    row["lmd"], row["lmd_frames"] = landmark_distance(g_lm, o_lm, scored)
    row["lmd_method"] = "mediapipe" if real else "masks vs pixel rule"
    if rule_lm is not None:
        row["lmd_rule_on_gt"], _ = landmark_distance(g_lm, rule_lm, scored)

    # Mouth motion: the pixel-rule opening of our frames against the jaw (SynthTalk's
    # viseme, or on real data the same rule on the ground-truth frames).
    jaw = data["visemes"][:T, 0] if not real else mouth_opening(gt_u8, lips_box)
    row["mouth_corr"] = pearson(mouth_opening(ours, lips_box), jaw)
    if not real:  # on real data the jaw series IS the rule on ground truth
        row["mouth_corr_gt"] = pearson(mouth_opening(gt_u8, lips_box), jaw)
    silent = render_clip(model, source, silent_mel(T), c2w, K, args.batch, baked)
    row["mouth_corr_silent"] = pearson(mouth_opening(fit_size(silent["rgb"], H), lips_box), jaw)

    if setup.syncnet is not None and T >= N_FRAMES:
        # The offset search needs every offset to keep some windows inside the clip.
        k = max(1, min(15, T - N_FRAMES // 2 - 1))
        sn = setup.syncnet
        for name, frames, m in (
            ("ours", ours.to(dev), mel),
            ("gt", gt.to(dev), mel),
            ("gt_shifted", gt.to(dev), shift_audio(mel, SHIFT_FRAMES)),
        ):
            s = sync_scores(sn, frames, torch.from_numpy(np.ascontiguousarray(m)).to(dev), max_offset=k)
            row[f"lse_d_{name}"], row[f"lse_c_{name}"], row[f"offset_{name}"] = s["lse_d"], s["lse_c"], s["offset"]
        row["sync_max_offset"] = k

    view_rgb = view_gt = None
    if "view_frames" in data and data["view_frames"].shape[0] > 0:
        view = render_clip(model, source, mel, data["view_c2w"][0, :T], K, args.batch, baked)
        view_gt = data["view_frames"][0, :T]
        vgt = to_tensor(view_gt)
        vmasks = data["view_masks"][0, :T]
        vbox = mouth_region(vmasks) if np.isin(vmasks, (2, 3)).any() else default_region(H, H)
        view_rgb = fit_size(view["rgb"], H)
        vm = image_metrics(vgt, view_rgb, vbox, valid)
        row["view_psnr"], row["view_ssim"] = vm["psnr"], vm["ssim"]

    if setup.identity:
        row.update(identity_scores(gt_u8[src], ours, gt_u8, view_rgb, view_gt))

    if keep_for_grid:
        picks = np.unique(np.linspace(0, T - 1, GRID_FRAMES).round().astype(int))
        row["_grid"] = {
            "source": gt_u8[src],
            "gt": gt_u8[picks],
            "ours": ours[picks],
            "score": main["score"][picks],
            "picks": picks,
        }
    return row


def summarise(rows: list[dict]) -> dict[str, float]:
    """Mean over clips of every numeric metric (NaN-skipping); frames/s as total frames
    over total render time."""
    keys = [k for k in rows[0] if not k.startswith("_") and k not in ("clip", "identity", "lmd_method")]
    for r in rows[1:]:
        keys += [k for k in r if k not in keys and not k.startswith("_")]
    mean = {}
    for k in keys:
        if k.startswith("offset_") or k in ("source_frame", "frames", "lmd_frames", "sync_max_offset"):
            continue
        vals = np.array([r[k] for r in rows if isinstance(r.get(k), (int, float))], np.float64)
        if vals.size:
            finite = vals[~np.isnan(vals)]
            mean[k] = float(finite.mean()) if finite.size else float("nan")
    frames = sum(r["frames"] for r in rows)
    mean["frames"] = frames
    mean["fps"] = frames / sum(r["render_seconds"] for r in rows)
    return mean


def evaluate(args) -> int:
    setup = load_setup(args)
    for note in setup.notes:
        print(f"note: {note}", file=sys.stderr)
    out = Path(args.out) if args.out else setup.run_dir / f"eval_step_{setup.model.checkpoint_step}"
    store = ClipStore(setup.manifest, capacity=1, views=any(c.get("views") for c in setup.clips))
    rows = []
    for i, clip in enumerate(setup.clips):
        if not args.quiet:
            print(f"[{i + 1}/{len(setup.clips)}] {clip['id']}", file=sys.stderr, flush=True)
        rows.append(evaluate_clip(setup, store, clip, args, keep_for_grid=i < GRID_CLIPS, fps_training_too=i == 0))
    mean = summarise(rows)
    if setup.identity:
        mean["identity_between"] = between_identities(rows)
    if args.baked and "training_fps" in rows[0]:
        mean["training_fps"] = rows[0]["training_fps"]  # measured on the first clip only
    result = {
        "checkpoint": str(setup.checkpoint),
        "step": setup.model.checkpoint_step,
        "data": str(setup.manifest.root),
        "split": args.split,
        "device": str(setup.device),
        "renderer": "baked" if args.baked else "training-style",
        "protocol": {
            "source": "one frame per clip: the usable frame with the smallest jaw opening",
            "frames": args.frames,
            "sync_shift_frames": SHIFT_FRAMES,
            "silent_audio": "log-mel of zeros (every band at the floor)",
        },
        "notes": setup.notes,
        "mean": mean,
        "clips": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
    }
    write_outputs(out, result, [r["_grid"] for r in rows if "_grid" in r], [r["clip"] for r in rows if "_grid" in r])
    print(format_table(result))
    print(f"wrote {out}/metrics.json, metrics.md, grid.png")
    return 0
