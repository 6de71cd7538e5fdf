"""The lip-sync expert's training data: every clip's lower-face crops and mel windows in
memory, in-sync and time-shifted pairs drawn from them, and the all-pairs loss."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.dataset import ClipStore, Manifest, TalkingHeadDataset, load_manifest
from ..model.syncnet import N_FRAMES, SyncNet, SyncNetConfig, lower_face, sync_bce

MID_FRAME = N_FRAMES // 2


@dataclass
class SyncArrays:
    """Clips in memory: crops (N, 3, S, S) uint8 and mel (N, 80, 16) float32, clips concatenated."""

    crops: torch.Tensor
    mel: torch.Tensor
    clip_start: np.ndarray  # (C,) first row of each clip
    clip_len: np.ndarray  # (C,)
    window_starts: np.ndarray  # (W,) global row of each usable 5-frame window's first frame
    window_clip: np.ndarray  # (W,) clip index of each window
    clip_ids: list[str]

    def __len__(self) -> int:
        return int(self.window_starts.shape[0])


def resolve_source(source):
    """(manifest, ClipStore, clips the caller offered) from a path, Manifest, ClipStore or dataset."""
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
        torch.cat(crops),
        torch.cat(mels),
        np.asarray(starts),
        np.asarray(lens),
        np.concatenate(w_starts).astype(np.int64),
        np.concatenate(w_clip).astype(np.int64),
        ids,
    )


def sample_pairs(
    arrays: SyncArrays, n: int, rng: np.random.Generator, min_offset: int = 5, other_clip_prob: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pairs: (first frame row of each video window, audio row, label); first half positive."""
    if len(arrays) == 0:
        raise ValueError("no usable 5-frame windows (clips too short, or no valid frames)")
    pick = rng.integers(len(arrays), size=n)
    v = arrays.window_starts[pick]
    clip = arrays.window_clip[pick]
    centre = v + MID_FRAME
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
    syncnet: SyncNet,
    video_emb: torch.Tensor,
    audio_emb: torch.Tensor,
    v: np.ndarray,
    clip_of_row: np.ndarray,
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
    centre = torch.from_numpy(v + MID_FRAME)
    clip = torch.from_numpy(clip_of_row[v])
    same = clip[:, None] == clip[None, :]
    near = same & ((centre[:, None] - centre[None, :]).abs() < min_offset)
    eye = torch.eye(b, dtype=torch.bool)
    neg = same & ~near & ~eye
    pos_loss = torch.nn.functional.softplus(-logits[eye]).mean()
    neg_loss = torch.nn.functional.softplus(logits[neg]).mean() if neg.any() else logits.new_zeros(())
    return 0.5 * (pos_loss + neg_loss)


def gather(arrays: SyncArrays, v: np.ndarray, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 5, 3, S, S) float crops in [0, 1] and (B, 80, 16) mel for sampled pairs."""
    rows = torch.from_numpy(v[:, None] + np.arange(N_FRAMES)[None, :])
    crops = arrays.crops[rows].float() / 255.0
    return crops, arrays.mel[torch.from_numpy(audio)]


def augment_crops(crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
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
def evaluate(syncnet: SyncNet, arrays: SyncArrays, v, audio, labels, batch: int = 256) -> dict[str, float]:
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


def split_clips(manifest, offered: list[dict], holdout_fraction: float) -> tuple[list[dict], list[dict], str]:
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
        return (
            [c for c in train if c["identity"] not in out],
            [c for c in train if c["identity"] in out],
            f"{k} training identities set aside",
        )
    # One identity only: nothing unseen to test on; test on its clips (stated in the stats).
    return train, train, "training clips (a single identity: no held-out data)"
