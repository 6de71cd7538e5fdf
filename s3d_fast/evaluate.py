"""``s3d-fast eval``: one-shot evaluation of a generator checkpoint on held-out identities.

Protocol (docs/evaluation.md): for every clip of the split, the source is ONE frame of
that clip, the one with the smallest jaw opening (SynthTalk's jaw viseme; on real data the
smallest pixel-rule mouth opening) among frames with a usable face; every frame of the
clip is then rendered from its own audio window and camera (training-style rendering
without jitter, batched over frames, or with ``--baked`` the real-time path) and compared
with the ground truth. The same frames are rendered again with the audio replaced by the
log-mel of silence, and, where the data set has extra cameras, from the first extra view.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .errors import S3DError

SHIFT_FRAMES = 25  # the "audio shifted by 1 s" sync baseline, at 25 fps
GRID_CLIPS = 3
GRID_FRAMES = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a run folder (its newest checkpoint) or a checkpoint folder")
    parser.add_argument("--data", required=True, help="data set folder (manifest.json)")
    parser.add_argument("--split", default="heldout", choices=("heldout", "train"),
                        help="clips to evaluate (default heldout: identities never trained on)")
    parser.add_argument("--out", help="output folder (default RUN/eval_step_N)")
    parser.add_argument("--clips", type=int, help="evaluate only the first K clips of the split")
    parser.add_argument("--frames", type=int, help="evaluate only the first N frames of each clip")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--baked", action="store_true",
                        help="render with the real-time path (baked occupancy grid) instead of the training-style one")
    parser.add_argument("--batch", type=int, default=4, help="frames per render call (default 4)")
    parser.add_argument("--syncnet", help="lip-sync expert weights (default RUN/syncnet.safetensors)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines (the result table is still printed)")


# --------------------------------------------------------------------------- inputs

@dataclass
class Setup:
    model: object
    checkpoint: Path
    run_dir: Path
    manifest: object
    clips: List[dict]
    device: object
    syncnet: Optional[object]
    notes: List[str] = field(default_factory=list)


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise S3DError("--device cuda: no CUDA device is available")
    return torch.device(name)


def run_dir_of(checkpoint: Path) -> Path:
    """RUN for RUN/checkpoints/step_N; the checkpoint's parent otherwise."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def load_setup(args) -> Setup:
    from .checkpoint import resolve_checkpoint
    from .data.dataset import load_manifest
    from .model.io import load_model

    for name in ("clips", "frames", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise S3DError(f"--{name} must be at least 1, got {value}")
    if args.frames is not None and args.frames < 5:
        raise S3DError(f"--frames must be at least 5 (the lip-sync expert sees 5-frame windows), got {args.frames}")
    ckpt_path = Path(args.checkpoint)
    if not ckpt_path.exists():
        raise S3DError(f"--checkpoint {ckpt_path}: no such run or checkpoint folder")
    manifest = load_manifest(args.data)  # ManifestError (one line) when absent or malformed
    clips = sorted(manifest.clips_in(args.split), key=lambda c: c["id"])
    if not clips:
        raise S3DError(f"{manifest.root}: no clips in split {args.split!r}")
    clips = clips[: args.clips] if args.clips else clips
    device = _device(args.device)
    ckpt = resolve_checkpoint(ckpt_path)
    model = load_model(ckpt, device)
    R = model.cfg.input_resolution
    if manifest.resolution != R:
        raise S3DError(f"{manifest.root}: frames are {manifest.resolution}^2 but the checkpoint takes {R}^2 source images")
    run = run_dir_of(ckpt)
    setup = Setup(model, ckpt, run, manifest, clips, device, None)
    sync_path = Path(args.syncnet) if args.syncnet else run / "syncnet.safetensors"
    if sync_path.is_file():
        from .model.syncnet import load_syncnet

        try:
            setup.syncnet = load_syncnet(sync_path).to(device)
        except Exception as exc:  # any unreadable weights file is bad input, said in one line
            raise S3DError(f"{sync_path}: cannot load the lip-sync expert: {exc}") from None
    elif args.syncnet:
        raise S3DError(f"--syncnet {sync_path}: no such file")
    else:
        setup.notes.append(f"no lip-sync expert at {sync_path} (a run trained without the sync loss): sync scores skipped")
    return setup


# --------------------------------------------------------------------------- rendering

def silent_mel(n_frames: int) -> np.ndarray:
    """Per-frame mel windows of n_frames of digital silence: the log-mel of zeros through
    the same front end as speech (every band at the floor, -4), not literal zeros (which
    would be a mid-level, speech-like input to the audio encoder)."""
    from .data import audio

    n_samples = int(math.ceil(n_frames * audio.SAMPLE_RATE / audio.FPS))
    return audio.mel_windows(audio.log_mel(np.zeros(n_samples, np.float32)), n_frames)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def render_clip(model, source, mel, c2w, K, batch: int, baked=None, keep_score: bool = False) -> dict:
    """Every frame of a clip: rgb (T, 3, Ro, Ro) float on the CPU, score (T, r, r) when
    asked, cavity (T, r, r) the rendered mouth-cavity share when the training-style render
    gives one (else None), and ``seconds`` of model time (audio encoder + rendering; the
    source encoding and baking are timed by the caller)."""
    import torch

    dev = source.image.device
    mel = torch.as_tensor(mel, dtype=torch.float32, device=dev)
    c2w = torch.as_tensor(c2w, dtype=torch.float32, device=dev)
    K = torch.as_tensor(K, dtype=torch.float32, device=dev)
    T = mel.shape[0]
    rgb, score, cavity = [], [], []
    with torch.inference_mode():
        _sync(dev)
        start = time.perf_counter()
        tokens = model.audio_tokens(mel)  # (T, t, D): the encoder's temporal context spans the clip
        for a in range(0, T, batch):
            b = min(T, a + batch)
            if baked is not None:
                out = model.render_frames(baked, tokens[a:b], c2w[a:b], K)
                rgb.append(out["rgb"].float().cpu())
                score.append(out["score"].float().cpu() if keep_score else None)
            else:
                out = model.render(source, tokens[a:b][None], c2w[a:b][None], K[None], stratified=False)
                rgb.append(out["rgb"][0].float().cpu())
                score.append(out["score"][0].float().cpu() if keep_score else None)
                if "cavity" in out:
                    cavity.append(out["cavity"][0].float().cpu())
        _sync(dev)
        seconds = time.perf_counter() - start
    return {
        "rgb": torch.cat(rgb).clamp_(0, 1),
        "score": torch.cat(score) if keep_score else None,
        "cavity": torch.cat(cavity) if cavity else None,
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- metrics

def _to_tensor(frames_uint8):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames_uint8)).permute(0, 3, 1, 2).float() / 255.0


def _fit(pred, size: int):
    """Our frames at the ground truth's resolution (area / bilinear, antialiased)."""
    import torch.nn.functional as F

    if pred.shape[-1] == size:
        return pred
    return F.interpolate(pred, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)


def metric_box(box, h: int, w: int, minimum: int = 11):
    """A (y0, y1, x0, x1) box grown about its centre to at least ``minimum`` pixels a side
    (SSIM's window), kept inside the frame."""
    y0, y1, x0, x1 = (int(v) for v in box)

    def grow(a, b, n):
        if b - a >= minimum:
            return a, b
        c = (a + b) // 2
        a = max(0, min(n - minimum, c - minimum // 2))
        return a, min(n, a + minimum)

    y0, y1 = grow(y0, y1, h)
    x0, x1 = grow(x0, x1, w)
    return y0, y1, x0, x1


def image_metrics(gt, pred, box, frames=None) -> Dict[str, float]:
    """PSNR / SSIM of pred vs gt ((T, 3, H, W) float in [0, 1]) over the chosen frames:
    whole frame and the mouth ``box``; per-frame values averaged (PSNR in dB, an identical
    frame is +inf and so is the mean)."""
    import torch

    from .metrics import psnr, ssim

    if frames is not None:
        idx = torch.as_tensor(np.flatnonzero(frames))
        gt, pred = gt[idx], pred[idx]
    if gt.shape[0] == 0:
        nan = float("nan")
        return {"psnr": nan, "ssim": nan, "mouth_psnr": nan, "mouth_ssim": nan}
    y0, y1, x0, x1 = metric_box(box, gt.shape[-2], gt.shape[-1])
    mg, mp = gt[..., y0:y1, x0:x1], pred[..., y0:y1, x0:x1]
    return {
        "psnr": float(psnr(pred, gt, reduction="none").mean()),
        "ssim": float(ssim(pred, gt, reduction="none").mean()),
        "mouth_psnr": float(psnr(mp, mg, reduction="none").mean()),
        "mouth_ssim": float(ssim(mp, mg, reduction="none").mean()),
    }


def source_frame(data: dict, n: int) -> int:
    """The one-shot source: the usable frame with the smallest jaw opening (a neutral,
    closed mouth, as a portrait photo would be); ties go to the earliest frame."""
    from .metrics.mouth import mouth_opening, mouth_region

    valid = np.asarray(data["valid"][:n], bool)
    if not valid.any():
        raise S3DError("no frame of the clip has a usable face")
    if "visemes" in data:
        jaw = np.asarray(data["visemes"][:n, 0], np.float64)
    else:
        jaw = mouth_opening(data["frames"][:n], mouth_region(data["masks"][:n]))
    jaw = np.where(valid, jaw, np.inf)
    return int(np.argmin(jaw))


def one_shot_source(model, data: dict, src: int, device):
    """The clip's frame ``src`` encoded as the source, with its mask and its own camera
    (rendering reprojects the source into each frame's view)."""
    import torch

    image = _to_tensor(data["frames"][src:src + 1]).to(device)
    mask = torch.from_numpy(data["masks"][src:src + 1].astype(np.int64)).to(device)
    c2w = torch.as_tensor(np.asarray(data["c2w"][src]), dtype=torch.float32, device=device)[None]
    K = torch.as_tensor(np.asarray(data["K"]), dtype=torch.float32, device=device)[None]
    return model.prepare_source(image, mask, c2w, K)


def mouth_landmarks(gt_u8, ours, masks, real: bool):
    """(gt landmarks, our landmarks, the pixel rule on gt (None on real data))."""
    from .metrics import landmarks as lm

    if real:
        return lm.landmarks_mediapipe(gt_u8), lm.landmarks_mediapipe(ours), None
    return lm.landmarks_from_masks(masks), lm.landmarks_from_pixels(ours, masks), lm.landmarks_from_pixels(gt_u8, masks)


def evaluate_clip(setup: Setup, store, clip: dict, args, keep_for_grid: bool, fps_training_too: bool) -> dict:
    import torch

    from .metrics import mouth_opening, mouth_region, pearson
    from .metrics.landmarks import landmark_distance
    from .metrics.mouth import default_region
    from .metrics.sync import shift_audio, sync_scores
    from .model.syncnet import N_FRAMES

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

    with torch.inference_mode():
        _sync(dev)
        start = time.perf_counter()
        source = one_shot_source(model, data, src, dev)
        baked = model.bake(source) if args.baked else None
        _sync(dev)
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

    gt = _to_tensor(gt_u8)
    ours = _fit(main["rgb"], H)
    # The source frame itself is left out of the image metrics: copying it is no test.
    scored = valid.copy()
    scored[src] = False
    lips_box = mouth_region(masks)
    row.update(image_metrics(gt, ours, lips_box, scored))
    # The baseline every model must beat: the source frame itself, unmoved, as every frame.
    copy = image_metrics(gt, gt[src:src + 1].expand_as(gt), lips_box, scored)
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
    row["mouth_corr_silent"] = pearson(mouth_opening(_fit(silent["rgb"], H), lips_box), jaw)

    if setup.syncnet is not None and T >= N_FRAMES:
        # The offset search needs every offset to keep some windows inside the clip.
        k = max(1, min(15, T - N_FRAMES // 2 - 1))
        sn = setup.syncnet
        for name, frames, m in (("ours", ours.to(dev), mel), ("gt", gt.to(dev), mel),
                                ("gt_shifted", gt.to(dev), shift_audio(mel, SHIFT_FRAMES))):
            s = sync_scores(sn, frames, torch.from_numpy(np.ascontiguousarray(m)).to(dev), max_offset=k)
            row[f"lse_d_{name}"], row[f"lse_c_{name}"], row[f"offset_{name}"] = s["lse_d"], s["lse_c"], s["offset"]
        row["sync_max_offset"] = k

    if "view_frames" in data and data["view_frames"].shape[0] > 0:
        view = render_clip(model, source, mel, data["view_c2w"][0, :T], K, args.batch, baked)
        vgt = _to_tensor(data["view_frames"][0, :T])
        vmasks = data["view_masks"][0, :T]
        vbox = mouth_region(vmasks) if np.isin(vmasks, (2, 3)).any() else default_region(H, H)
        vm = image_metrics(vgt, _fit(view["rgb"], H), vbox, valid)
        row["view_psnr"], row["view_ssim"] = vm["psnr"], vm["ssim"]

    if keep_for_grid:
        picks = np.unique(np.linspace(0, T - 1, GRID_FRAMES).round().astype(int))
        row["_grid"] = {
            "source": gt_u8[src], "gt": gt_u8[picks], "ours": ours[picks], "score": main["score"][picks],
            "picks": picks,
        }
    return row


# --------------------------------------------------------------------------- summary

def summarise(rows: List[dict]) -> Dict[str, float]:
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


def run(args) -> int:
    from .data.dataset import ClipStore
    from .eval_report import write_outputs, format_table

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
