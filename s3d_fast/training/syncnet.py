"""Stage 1: train the lip-sync expert on in-sync vs time-shifted pairs (docs/design.md section 4).

Every clip is decoded once; its lower-face crops (uint8, ``face_size``^2) and per-frame mel
windows are kept in memory, and batches are index arithmetic on those arrays, so a step
costs only the network.

A training batch holds ``batch_size`` 5-frame windows (frames s..s+4, all ``valid``) from
``clips_per_batch`` clips, each with its own audio window (the middle frame's). Every
(video i, audio j) pair of the batch is scored (SigLIP-style, :func:`all_pairs_loss`):
(i, i) is in sync (label 1); (i, j) with j's audio at least ``min_offset`` frames away in
the same clip is a negative (label 0): audio shifted in time, same voice and face. That
gives ~B^2/k negatives per step for the price of B embeddings, with positives and
negatives weighted equally. Pairs across clips are not used (see :func:`all_pairs_loss`).

Held-out accuracy (threshold p = 0.5) and AUC are measured on a fixed, seeded, balanced
set of explicit pairs (:func:`sample_pairs`: in sync, or audio shifted by >= ``min_offset``
frames in the same clip) from clips the expert never trains on: the data set's
``heldout`` split (identities never seen), or, if it has none, a ``holdout_fraction`` of
the training identities set aside.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import ClipStore, load_manifest
from ..metrics.sync import shift_audio, sync_scores
from ..model.syncnet import SyncNet, SyncNetConfig, freeze, save_syncnet
from .syncnet_pairs import (
    MID_FRAME,
    all_pairs_loss,
    augment_crops,
    evaluate,
    gather,
    load_arrays,
    resolve_source,
    sample_batch,
    sample_pairs,
    split_clips,
)


def train_syncnet(
    source,
    config: Optional[SyncNetConfig] = None,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    log_fn: Optional[Callable[[int, dict], None]] = None,
    *,
    min_offset: int = 5,
    other_clip_prob: float = 0.0,
    clips_per_batch: int = 4,
    eval_pairs: int = 512,
    eval_every: int = 0,
    holdout_fraction: float = 0.15,
    augment: bool = True,
    time_limit_s: Optional[float] = None,
    num_threads: Optional[int] = None,
    weight_decay: float = 0.01,
) -> tuple[SyncNet, dict]:
    """Train a :class:`SyncNet` from scratch; returns (syncnet in eval mode, stats).

    ``source``: a data set folder, Manifest, ClipStore or TalkingHeadDataset (only its
    ``train``-split clips are trained on). Deterministic given ``seed`` (same machine and
    thread count). ``log_fn(step, record)`` receives the training loss every step and the
    held-out metrics every ``eval_every`` steps (0: only at the end). ``time_limit_s`` stops
    early (the stats say how many steps ran). ``num_threads`` sets torch's intra-op threads
    for the call (restored after): on a shared, busy CPU one thread can be an order of
    magnitude faster than two for convolutions this small, because OpenMP workers
    spin-wait on each other. Stats: ``heldout_accuracy``, ``heldout_loss``,
    ``heldout_p_pos`` / ``heldout_p_neg``, ``heldout_auc``, ``train_accuracy`` (same-size set of training
    pairs), ``steps``, ``seconds``, ``steps_per_s``, ``train_windows``, ``heldout_windows``,
    ``heldout_source``, ``loss_curve``.
    """
    if num_threads is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(int(num_threads))
        try:
            return train_syncnet(
                source,
                config,
                steps,
                batch_size,
                lr,
                seed,
                progress,
                log_fn,
                min_offset=min_offset,
                other_clip_prob=other_clip_prob,
                clips_per_batch=clips_per_batch,
                eval_pairs=eval_pairs,
                eval_every=eval_every,
                holdout_fraction=holdout_fraction,
                augment=augment,
                time_limit_s=time_limit_s,
                num_threads=None,
                weight_decay=weight_decay,
            )
        finally:
            torch.set_num_threads(previous)
    config = config or SyncNetConfig()
    if steps < 0 or batch_size < 2:
        raise ValueError(f"steps must be >= 0 and batch_size >= 2, got {steps}, {batch_size}")
    manifest, store, offered = resolve_source(source)
    train_clips, eval_clips, eval_source = split_clips(manifest, offered, holdout_fraction)

    t_load = time.perf_counter()
    train_arr = load_arrays(store, train_clips, config)
    eval_arr = train_arr if eval_clips is train_clips else load_arrays(store, eval_clips, config)
    t_load = time.perf_counter() - t_load

    rng = np.random.default_rng(seed)
    eval_set = sample_pairs(eval_arr, eval_pairs, np.random.default_rng((seed, 1)), min_offset, other_clip_prob)
    train_check = sample_pairs(train_arr, eval_pairs, np.random.default_rng((seed, 2)), min_offset, other_clip_prob)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SyncNet(config)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, min(100, steps // 20))

    def lr_at(step):  # linear warm-up, cosine decay to 10 %
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * t)))

    row_clip = np.repeat(np.arange(len(train_arr.clip_len)), train_arr.clip_len)
    net.train()
    losses = []
    bar = tqdm(total=steps, desc="syncnet", unit="step", disable=not progress, leave=False)
    t0 = time.perf_counter()
    done = 0
    try:
        for step in range(steps):
            if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            v = sample_batch(train_arr, batch_size, rng, clips_per_batch)
            crops, mel = gather(train_arr, v, v + MID_FRAME)
            if augment:
                crops = augment_crops(crops, gen)
            loss = all_pairs_loss(net, net.embed_crops(crops), net.embed_audio(mel), v, row_clip, min_offset)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
            losses.append(float(loss.detach()))
            record = {"loss": losses[-1], "lr": lr_at(step)}
            if eval_every and done % eval_every == 0 and done < steps:
                record.update({f"heldout_{k}": x for k, x in evaluate(net, eval_arr, *eval_set).items()})
                bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{record['heldout_accuracy']:.3f}")
            else:
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if log_fn is not None:
                log_fn(done, record)
            bar.update(1)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    net.eval()
    held = evaluate(net, eval_arr, *eval_set)
    stats = {f"heldout_{k}": x for k, x in held.items()}
    stats["train_accuracy"] = evaluate(net, train_arr, *train_check)["accuracy"]
    stats.update(
        steps=done,
        seconds=seconds,
        load_seconds=t_load,
        steps_per_s=done / max(seconds, 1e-9),
        train_windows=len(train_arr),
        heldout_windows=len(eval_arr),
        heldout_source=eval_source,
        train_clips=len(train_clips),
        heldout_clips=len(eval_clips),
        loss_curve=losses,
    )
    if log_fn is not None:
        log_fn(done, {k: x for k, x in stats.items() if k != "loss_curve"})
    return net, stats


def main(argv=None) -> int:
    """Stage 1 alone: ``python -m s3d_fast.training.syncnet --data DIR --out FILE.safetensors``.

    Trains the expert (``--steps``, stopped early at ``--minutes``), saves it, prints the
    held-out accuracy and, per held-out clip, LSE-D / LSE-C of the ground-truth video with
    its own audio and with the audio shifted by ``--shift`` frames, as JSON.
    """
    ap = argparse.ArgumentParser(prog="python -m s3d_fast.training.syncnet", description=main.__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="weights file (.safetensors)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=None, help="stop training after this wall time")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=int, default=25, help="audio shift (frames) for the off-sync reference")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 is fastest on a busy CPU)")
    args = ap.parse_args(argv)

    def log(step, rec):
        if "heldout_accuracy" in rec:
            print(
                json.dumps({"step": step, **{k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}}),
                flush=True,
            )

    net, stats = train_syncnet(
        args.data,
        SyncNetConfig(),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=False,
        log_fn=log,
        eval_every=args.eval_every,
        time_limit_s=None if args.minutes is None else 60.0 * args.minutes,
        num_threads=args.threads,
    )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    freeze(net)
    save_syncnet(args.out, net)
    m = load_manifest(args.data)
    store = ClipStore(m, capacity=1)
    rows = []
    for clip in m.clips_in("heldout") or m.clips_in("train")[-2:]:
        data = store.get(clip)
        true = sync_scores(net, data["frames"], data["mel"])
        off = sync_scores(net, data["frames"], shift_audio(data["mel"], args.shift))
        rows.append(
            {
                "clip": clip["id"],
                "lse_d": true["lse_d"],
                "lse_c": true["lse_c"],
                "offset": true["offset"],
                "shifted_lse_d": off["lse_d"],
                "shifted_lse_c": off["lse_c"],
                "shifted_offset": off["offset"],
                "dist_at_zero": true["dist_at_zero"],
                "shifted_dist_at_zero": off["dist_at_zero"],
            }
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("clip",)}
    report = {k: v for k, v in stats.items() if k != "loss_curve"}
    report.update(lse_clips=rows, lse_mean=mean, weights=args.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
