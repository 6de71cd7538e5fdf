"""Stage 1: train the lip-sync expert on in-sync vs time-shifted pairs (DESIGN 4).

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

import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .syncnet import N_FRAMES, SyncNet, SyncNetConfig, lower_face, sync_bce

_MID = N_FRAMES // 2


@dataclass
class SyncArrays:
    """Clips in memory: crops (N, 3, S, S) uint8 and mel (N, 80, 16) float32, clips concatenated."""

    crops: torch.Tensor
    mel: torch.Tensor
    clip_start: np.ndarray  # (C,) first row of each clip
    clip_len: np.ndarray  # (C,)
    window_starts: np.ndarray  # (W,) global row of each usable 5-frame window's first frame
    window_clip: np.ndarray  # (W,) clip index of each window
    clip_ids: List[str]

    def __len__(self) -> int:
        return int(self.window_starts.shape[0])


def _resolve_source(source):
    """(manifest, ClipStore, clips the caller offered) from a path, Manifest, ClipStore or dataset."""
    from ..data.dataset import ClipStore, Manifest, TalkingHeadDataset, load_manifest

    if isinstance(source, (str, os.PathLike)):
        m = load_manifest(source)
        return m, ClipStore(m, capacity=1), list(m.clips)
    if isinstance(source, Manifest):
        return source, ClipStore(source, capacity=1), list(source.clips)
    if isinstance(source, ClipStore):
        return source.manifest, source, list(source.manifest.clips)
    if isinstance(source, TalkingHeadDataset):
        return source.manifest, source.store, list(source.clips)
    raise TypeError(
        "source must be a data set folder, a Manifest, a ClipStore or a TalkingHeadDataset, "
        f"got {type(source).__name__}"
    )


def load_arrays(store, clips: Sequence[dict], config: SyncNetConfig, chunk: int = 64) -> SyncArrays:
    """Decode ``clips`` once into lower-face crops and mel windows (see :class:`SyncArrays`)."""
    crops, mels, starts, lens, w_starts, w_clip, ids = [], [], [], [], [], [], []
    row = 0
    for ci, clip in enumerate(clips):
        data = store.get(clip)
        n = int(clip["n_frames"])
        frames = data["frames"][:n]
        out = []
        for a in range(0, n, chunk):  # chunked: a whole 256^2 clip as float would be ~80 MB per 100 frames
            f = torch.from_numpy(np.ascontiguousarray(frames[a : a + chunk])).permute(0, 3, 1, 2).float() / 255.0
            c = lower_face(f, config.face_size, config.crop_rows, config.crop_cols)
            out.append((c * 255.0).round_().clamp_(0, 255).to(torch.uint8))
        crops.append(torch.cat(out))
        mels.append(torch.from_numpy(np.ascontiguousarray(data["mel"][:n], dtype=np.float32)))
        valid = np.asarray(data["valid"][:n], bool)
        runs = np.convolve(valid.astype(np.int64), np.ones(N_FRAMES, np.int64), mode="valid")
        s = np.flatnonzero(runs == N_FRAMES)
        w_starts.append(s + row)
        w_clip.append(np.full(s.shape, ci))
        starts.append(row)
        lens.append(n)
        ids.append(clip["id"])
        row += n
    if not crops:
        raise ValueError("no clips to load")
    return SyncArrays(
        torch.cat(crops), torch.cat(mels), np.asarray(starts), np.asarray(lens),
        np.concatenate(w_starts).astype(np.int64), np.concatenate(w_clip).astype(np.int64), ids,
    )


def sample_pairs(
    arrays: SyncArrays, n: int, rng: np.random.Generator, min_offset: int = 5, other_clip_prob: float = 0.0
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pairs: (first frame row of each video window, audio row, label); first half positive."""
    if len(arrays) == 0:
        raise ValueError("no usable 5-frame windows (clips too short, or no valid frames)")
    pick = rng.integers(len(arrays), size=n)
    v = arrays.window_starts[pick]
    clip = arrays.window_clip[pick]
    centre = v + _MID
    labels = np.zeros(n, np.float32)
    n_pos = n // 2
    labels[:n_pos] = 1.0
    audio = centre.copy()
    for i in range(n_pos, n):
        c = clip[i]
        lo, length = arrays.clip_start[c], arrays.clip_len[c]
        local = centre[i] - lo
        # Frames at least min_offset away on either side; if the clip has none (shorter than
        # ~2*min_offset), or by chance, take the audio from another clip.
        far = np.concatenate([np.arange(0, max(0, local - min_offset + 1)), np.arange(local + min_offset, length)])
        if far.size == 0 or (len(arrays.clip_len) > 1 and rng.random() < other_clip_prob):
            others = np.flatnonzero(np.arange(len(arrays.clip_len)) != c)
            if others.size == 0:
                raise ValueError(f"clip {arrays.clip_ids[c]!r} is too short for an offset of {min_offset} frames")
            o = int(rng.choice(others))
            audio[i] = arrays.clip_start[o] + rng.integers(arrays.clip_len[o])
        else:
            audio[i] = lo + int(rng.choice(far))
    return v, audio, labels


def sample_batch(arrays: SyncArrays, n: int, rng: np.random.Generator, clips_per_batch: int = 4) -> np.ndarray:
    """First-frame rows of ``n`` windows drawn from ``clips_per_batch`` random clips.

    Few clips per batch make most in-batch negatives the hard kind: the same face and voice
    at another time.
    """
    clips = np.unique(arrays.window_clip)
    k = min(clips_per_batch, clips.size)
    chosen = rng.choice(clips, size=k, replace=False)
    per = np.full(k, n // k)
    per[: n % k] += 1
    rows = []
    for c, m in zip(chosen, per):
        pool = arrays.window_starts[arrays.window_clip == c]
        rows.append(rng.choice(pool, size=m, replace=pool.size < m))
    return np.concatenate(rows)


def all_pairs_loss(
    syncnet: SyncNet, video_emb: torch.Tensor, audio_emb: torch.Tensor, v: np.ndarray, clip_of_row: np.ndarray,
    min_offset: int,
) -> torch.Tensor:
    """Balanced BCE over the (video i, audio j) pairs of a batch (SigLIP-style).

    Pair (i, i) is in sync (label 1); (i, j) is a negative when j's audio comes from the
    same clip at least ``min_offset`` frames away. Closer pairs are ambiguous (speech
    barely changes in a frame or two) and left out; so are pairs across clips: those can
    be told apart by matching the voice to the face (identity), a shortcut that does not
    carry over to unseen identities and that the expert learns first when allowed.
    Positives and negatives carry equal total weight, so p = 0.5 stays the threshold.
    """
    b = v.shape[0]
    cos = video_emb @ audio_emb.t()  # unit vectors: the cosine matrix
    logits = cos * syncnet.log_scale.exp() + syncnet.bias
    centre = torch.from_numpy(v + _MID)
    clip = torch.from_numpy(clip_of_row[v])
    same = clip[:, None] == clip[None, :]
    near = same & ((centre[:, None] - centre[None, :]).abs() < min_offset)
    eye = torch.eye(b, dtype=torch.bool)
    neg = same & ~near & ~eye
    pos_loss = torch.nn.functional.softplus(-logits[eye]).mean()
    neg_loss = torch.nn.functional.softplus(logits[neg]).mean() if neg.any() else logits.new_zeros(())
    return 0.5 * (pos_loss + neg_loss)


def gather(arrays: SyncArrays, v: np.ndarray, audio: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, 5, 3, S, S) float crops in [0, 1] and (B, 80, 16) mel for sampled pairs."""
    rows = torch.from_numpy(v[:, None] + np.arange(N_FRAMES)[None, :])
    crops = arrays.crops[rows].float() / 255.0
    return crops, arrays.mel[torch.from_numpy(audio)]


def _augment(crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness/contrast jitter, shifts of up to 1/16 of the crop, and
    horizontal flips (a mirrored mouth speaks alike).

    Identities differ in skin, light, shape and where exactly the mouth sits; jitter keeps
    the expert on the mouth's motion rather than on one identity's look, and so closer to
    generator output.
    """
    b, s = crops.shape[0], crops.shape[-1]
    m = max(1, s // 16)
    dy, dx = torch.randint(-m, m + 1, (2,), generator=gen).tolist()  # one shift per batch: a cheap roll
    crops = torch.roll(crops, (dy, dx), dims=(-2, -1))
    gain = 1.0 + 0.3 * (torch.rand(b, 1, 1, 1, 1, generator=gen) - 0.5)
    bias = 0.1 * (torch.rand(b, 1, 1, 1, 1, generator=gen) - 0.5)
    out = (crops * gain + bias).clamp_(0.0, 1.0)
    flip = torch.rand(b, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def evaluate(syncnet: SyncNet, arrays: SyncArrays, v, audio, labels, batch: int = 256) -> Dict[str, float]:
    """Accuracy (threshold 0.5) and BCE of the expert on fixed pairs; restores train/eval mode."""
    was_training = syncnet.training
    syncnet.eval()
    probs = []
    for a in range(0, len(v), batch):
        crops, mel = gather(arrays, v[a : a + batch], audio[a : a + batch])
        probs.append(syncnet.sync_probability(syncnet.embed_crops(crops), syncnet.embed_audio(mel)))
    syncnet.train(was_training)
    p = torch.cat(probs)
    y = torch.from_numpy(labels)
    # AUC: the chance a random in-sync pair outscores a random shifted one (threshold-free).
    pos, neg = p[y == 1], p[y == 0]
    auc = float(((pos[:, None] > neg[None, :]).float() + 0.5 * (pos[:, None] == neg[None, :]).float()).mean())
    return {
        "auc": auc,
        "accuracy": float(((p > 0.5).float() == y).float().mean()),
        "loss": float(sync_bce(p, y)),
        "p_pos": float(p[y == 1].mean()),
        "p_neg": float(p[y == 0].mean()),
    }


def _split_clips(manifest, offered: List[dict], holdout_fraction: float) -> Tuple[List[dict], List[dict], str]:
    train = [c for c in offered if c["split"] == "train"]
    heldout = [c for c in manifest.clips if c["split"] == "heldout"]
    if not train:
        raise ValueError("no training-split clips to train the sync expert on")
    if heldout:
        return train, heldout, "heldout split"
    idents = sorted({c["identity"] for c in train})
    if len(idents) >= 2:
        k = max(1, int(round(len(idents) * holdout_fraction)))
        out = set(idents[-k:])
        return [c for c in train if c["identity"] not in out], [c for c in train if c["identity"] in out], \
            f"{k} training identities set aside"
    # One identity only: nothing unseen to test on; test on its clips (stated in the stats).
    return train, train, "training clips (a single identity: no held-out data)"


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
) -> Tuple[SyncNet, dict]:
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
                source, config, steps, batch_size, lr, seed, progress, log_fn, min_offset=min_offset,
                other_clip_prob=other_clip_prob, clips_per_batch=clips_per_batch, eval_pairs=eval_pairs,
                eval_every=eval_every, holdout_fraction=holdout_fraction, augment=augment,
                time_limit_s=time_limit_s, num_threads=None, weight_decay=weight_decay,
            )
        finally:
            torch.set_num_threads(previous)
    from tqdm import tqdm

    config = config or SyncNetConfig()
    if steps < 0 or batch_size < 2:
        raise ValueError(f"steps must be >= 0 and batch_size >= 2, got {steps}, {batch_size}")
    manifest, store, offered = _resolve_source(source)
    train_clips, eval_clips, eval_source = _split_clips(manifest, offered, holdout_fraction)

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
            crops, mel = gather(train_arr, v, v + _MID)
            if augment:
                crops = _augment(crops, gen)
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
        steps=done, seconds=seconds, load_seconds=t_load, steps_per_s=done / max(seconds, 1e-9),
        train_windows=len(train_arr), heldout_windows=len(eval_arr), heldout_source=eval_source,
        train_clips=len(train_clips), heldout_clips=len(eval_clips), loss_curve=losses,
    )
    if log_fn is not None:
        log_fn(done, {k: x for k, x in stats.items() if k != "loss_curve"})
    return net, stats


def main(argv=None) -> int:
    """Stage 1 alone: ``python -m s3d_fast.model.sync_training --data DIR --out FILE.safetensors``.

    Trains the expert (``--steps``, stopped early at ``--minutes``), saves it, prints the
    held-out accuracy and, per held-out clip, LSE-D / LSE-C of the ground-truth video with
    its own audio and with the audio shifted by ``--shift`` frames, as JSON.
    """
    import argparse
    import json

    from ..metrics.sync import shift_audio, sync_scores
    from .syncnet import freeze, save_syncnet

    ap = argparse.ArgumentParser(prog="python -m s3d_fast.model.sync_training", description=main.__doc__)
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
            print(json.dumps({"step": step, **{k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}}),
                  flush=True)

    net, stats = train_syncnet(
        args.data, SyncNetConfig(), steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        progress=False, log_fn=log, eval_every=args.eval_every,
        time_limit_s=None if args.minutes is None else 60.0 * args.minutes, num_threads=args.threads,
    )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    freeze(net)
    save_syncnet(args.out, net)
    from ..data.dataset import ClipStore, load_manifest

    m = load_manifest(args.data)
    store = ClipStore(m, capacity=1)
    rows = []
    for clip in m.clips_in("heldout") or m.clips_in("train")[-2:]:
        data = store.get(clip)
        true = sync_scores(net, data["frames"], data["mel"])
        off = sync_scores(net, data["frames"], shift_audio(data["mel"], args.shift))
        rows.append({"clip": clip["id"], "lse_d": true["lse_d"], "lse_c": true["lse_c"], "offset": true["offset"],
                     "shifted_lse_d": off["lse_d"], "shifted_lse_c": off["lse_c"], "shifted_offset": off["offset"],
                     "dist_at_zero": true["dist_at_zero"], "shifted_dist_at_zero": off["dist_at_zero"]})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("clip",)}
    report = {k: v for k, v in stats.items() if k != "loss_curve"}
    report.update(lse_clips=rows, lse_mean=mean, weights=args.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
