"""One loader for every data set on disk (SynthTalk and preprocessed real video).

The format itself lives in :mod:`s3d_fast.data.manifest`; this module turns a data set
folder into a ``torch.utils.data.Dataset`` whose items are what training needs: a source
frame of the identity, target frame(s) of the same clip with their mel windows, masks and
cameras. Clips are decoded whole on first use and a few are kept (clips are seconds long),
because seeking an H.264 stream per item would cost far more than it saves.
"""

from __future__ import annotations

import collections
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from . import audio, video
from .colour_response import random_response
from .errors import ManifestError
from .manifest import (  # noqa: F401  (re-exported: the format and its loader)
    MANIFEST_NAME,
    SCHEMA_VERSION,
    SPLITS,
    Manifest,
    load_manifest,
    validate,
    write_manifest,
)
from .npz import load_npz

_NPZ_REQUIRED = ("c2w", "K", "head_pose", "valid", "masks")


class ClipStore:
    """Decoded clips (frames, meta arrays, mel windows) with a small LRU cache."""

    def __init__(self, manifest: Manifest, capacity: int = 4, views: bool = False):
        self.manifest = manifest
        self.capacity = capacity
        self.views = views
        self._cache: collections.OrderedDict[str, dict[str, np.ndarray]] = collections.OrderedDict()

    def get(self, clip: dict) -> dict[str, np.ndarray]:
        cid = clip["id"]
        if cid in self._cache:
            self._cache.move_to_end(cid)
            return self._cache[cid]
        data = self._load(clip)
        self._cache[cid] = data
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return data

    def _load(self, clip: dict) -> dict[str, np.ndarray]:
        m = self.manifest
        meta_path = m.path(clip["meta"])
        meta = load_npz(meta_path, what="clip's meta.npz")
        missing = [k for k in _NPZ_REQUIRED if k not in meta]
        if missing:
            raise ManifestError(f"{meta_path}: lacks {', '.join(missing)}")
        frames = video.read_video(m.path(clip["frames"]), with_audio=False).frames
        n = clip["n_frames"]
        if frames.shape[0] < n or meta["c2w"].shape[0] < n or meta["masks"].shape[0] < n:
            raise ManifestError(
                f"clip {clip['id']!r}: manifest says {n} frames, files hold "
                f"{frames.shape[0]} frames / {meta['c2w'].shape[0]} cameras / {meta['masks'].shape[0]} masks"
            )
        speech = audio.load_audio(m.path(clip["audio"]))
        meta["frames"] = frames[:n]
        if self.views and clip.get("views"):
            if "view_c2w" not in meta or "view_masks" not in meta:
                raise ManifestError(f"{meta_path}: the clip lists extra views but lacks view_c2w / view_masks")
            meta["view_frames"] = np.stack(
                [video.read_video(m.path(v), with_audio=False).frames[:n] for v in clip["views"]]
            )
        meta["mel"] = audio.audio_features(speech, n)
        return meta


def _source_frames(valid: np.ndarray, masks: Optional[np.ndarray], quantile: float) -> np.ndarray:
    """The frames a training source may be: valid ones, and with ``masks`` (T, H, W) and
    ``quantile`` < 1 only those whose mouth interior is no larger than that quantile of
    the clip's (ties kept: a clip whose mouth is shut in half its frames offers all of them)."""
    frames = np.flatnonzero(valid)
    if masks is None or quantile >= 1.0 or frames.size == 0:
        return frames
    interior = (masks[frames] == 3).sum(axis=(1, 2))
    return frames[interior <= np.quantile(interior, quantile)]


class TalkingHeadDataset(Dataset):
    """Items over (clip, target frame) pairs of one split.

    Each item: ``source`` (3, H, W) float32 in [0, 1], a frame of the same clip chosen at
    random (deterministic per index and ``seed``); ``target`` (n, 3, H, W); ``mel``
    (n, 80, 16); ``target_masks`` (n, H, W) int64 labels and ``source_mask``; cameras
    ``source_c2w`` / ``target_c2w`` (camera-to-head, 4x4) and ``K``; ``visemes`` (n, 3)
    where the data set has them (NaN otherwise). ``n`` = ``n_targets`` consecutive frames
    (the lip-sync loss wants 5).

    ``source_quantile`` < 1 draws the source only from a clip's frames with the least open
    mouths: those whose mouth-interior area (mask label 3) is at most that quantile of the
    clip's. A one-shot portrait has a closed mouth (evaluation takes the most closed frame),
    so the model should learn to open a closed mouth, not to close an open one.

    ``colour_jitter`` > 0 shows each item under a random camera response of that strength
    (0..1; :mod:`s3d_fast.data.colour_response`), the same for its source and targets.

    With ``views=True`` (data sets with extra cameras, e.g. SynthTalk ``--views``), an
    item also holds the same target frames seen from one extra view chosen at random:
    ``view_target`` (n, 3, H, W), ``view_masks``, ``view_c2w`` and ``view_index``.
    """

    def __init__(
        self,
        root,
        split: Optional[str] = "train",
        n_targets: int = 1,
        seed: int = 0,
        cache_clips: int = 4,
        views: bool = False,
        source_quantile: float = 1.0,
        colour_jitter: float = 0.0,
    ):
        if n_targets < 1:
            raise ValueError(f"n_targets must be >= 1, got {n_targets}")
        if not 0.0 < source_quantile <= 1.0:
            raise ValueError(f"source_quantile must be in (0, 1], got {source_quantile}")
        if not 0.0 <= colour_jitter <= 1.0:
            raise ValueError(f"colour_jitter must be in [0, 1], got {colour_jitter}")
        self.manifest = load_manifest(root)
        self.clips = self.manifest.clips_in(split)
        if not self.clips:
            raise ManifestError(f"{self.manifest.root}: no clips in split {split!r}")
        self.n_targets = n_targets
        self.seed = seed
        if views:
            lacking = [c["id"] for c in self.clips if not c.get("views")]
            if lacking:
                raise ManifestError(f"{self.manifest.root}: views=True but clip {lacking[0]!r} has no extra views")
        self.views = views
        self.store = ClipStore(self.manifest, cache_clips, views)
        # Index: every start frame whose n_targets frames all hold a usable face (`valid`),
        # so frames a preprocessor found no face in are never training targets.
        self.source_quantile = source_quantile
        self.colour_jitter = colour_jitter
        self._starts = []
        self._sources: dict[int, np.ndarray] = {}  # per clip, from its masks once it is loaded
        for clip in self.clips:
            meta = load_npz(self.manifest.path(clip["meta"]), keys=("valid",), what="clip's meta.npz")
            if "valid" not in meta:
                raise ManifestError(f"{self.manifest.path(clip['meta'])}: lacks valid")
            valid = np.asarray(meta["valid"][: clip["n_frames"]], bool)
            runs = np.convolve(valid.astype(np.int64), np.ones(n_targets, np.int64), mode="valid")
            self._starts.append(np.flatnonzero(runs == n_targets))
        self._offsets = np.concatenate([[0], np.cumsum([len(s) for s in self._starts])])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        ci = int(np.searchsorted(self._offsets, index, side="right") - 1)
        clip = self.clips[ci]
        start = int(self._starts[ci][index - int(self._offsets[ci])])
        data = self.store.get(clip)
        rng = np.random.default_rng((self.seed, index))
        if ci not in self._sources:
            n, q = clip["n_frames"], self.source_quantile
            self._sources[ci] = _source_frames(
                np.asarray(data["valid"][:n], bool), data["masks"][:n] if q < 1.0 else None, q
            )
        sources = self._sources[ci]
        src = int(rng.choice(sources)) if sources.size else start
        tgt = slice(start, start + self.n_targets)

        def img(x):
            return torch.from_numpy(np.ascontiguousarray(x)).permute(*range(x.ndim - 3), -1, -3, -2).float() / 255.0

        visemes = data.get("visemes")
        item = {
            "clip": clip["id"],
            "identity": clip["identity"],
            "source_index": src,
            "target_index": start,
            "source": img(data["frames"][src]),
            "target": img(data["frames"][tgt]),
            "mel": torch.from_numpy(data["mel"][tgt].copy()),
            "source_mask": torch.from_numpy(data["masks"][src].astype(np.int64)),
            "target_masks": torch.from_numpy(data["masks"][tgt].astype(np.int64)),
            "source_c2w": torch.from_numpy(data["c2w"][src].astype(np.float32)),
            "target_c2w": torch.from_numpy(data["c2w"][tgt].astype(np.float32)),
            "K": torch.from_numpy(data["K"].astype(np.float32)),
            "visemes": torch.from_numpy(
                visemes[tgt].astype(np.float32)
                if visemes is not None
                else np.full((self.n_targets, 3), np.nan, np.float32)
            ),
        }
        if self.views:
            v = int(rng.integers(data["view_frames"].shape[0]))
            item["view_index"] = v
            item["view_target"] = img(data["view_frames"][v, tgt])
            item["view_masks"] = torch.from_numpy(data["view_masks"][v, tgt].astype(np.int64))
            item["view_c2w"] = torch.from_numpy(data["view_c2w"][v, tgt].astype(np.float32))
        if self.colour_jitter > 0:  # drawn last, so the draws above do not depend on it
            response = random_response(rng, self.colour_jitter)
            for key in ("source", "target", "view_target"):
                if key in item:
                    item[key] = response(item[key])
        return item
