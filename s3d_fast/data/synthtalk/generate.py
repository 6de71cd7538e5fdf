"""One SynthTalk clip end to end, and whole data sets (resumable per clip).

A clip: a random utterance in the identity's voice, the visemes it implies, blinks, gaze
and small head motion, rendered from the physical front camera and from ``views`` extra
free-view cameras. On disk, per clip folder: ``frames.mp4`` (H.264, the speech muxed in
as AAC), ``audio.wav`` (16 kHz), ``view{k}.mp4`` and ``meta.npz`` (ground truth, DESIGN
5a). ``meta.npz`` is written last, so a clip folder with it is complete; a re-run skips
complete clips and the manifest is rewritten after each clip, so an interrupted run is a
valid, smaller data set.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np
from tqdm import tqdm

from .. import audio as audio_mod
from .. import video
from ..errors import DataError
from ..manifest import SCHEMA_VERSION, Manifest, load_manifest, write_manifest
from ..npz import save_npz
from . import camera, head, phonemes, photo_render, raycast, speech, visemes
from .identity import Identity, sample_identity
from .photo_identity import sample_photo_identity

FPS = 25
# Generator styles and their versions: "classic" (the original smooth-shaded heads, whose
# output never changes) and "photo" (photo_*.py: hair volume, body, scene, richer light).
STYLES = {"classic": 1, "photo": 1}
_PHOTO_STREAM = 0xF070  # the photo style's own random stream per clip: classic draws stay put


@dataclass(frozen=True)
class SynthConfig:
    identities: int = 4
    clips: int = 2
    seconds: float = 3.0
    size: int = 256
    views: int = 2
    seed: int = 0
    heldout: int = 1
    crf: int = 16
    supersample: int = 1
    style: str = "classic"

    def validate(self) -> None:
        """Every setting in range, and the whole set within :data:`MAX_IMAGES`: one
        DataError naming the option, before anything is written."""
        for name, low, high in _INT_LIMITS:
            value = getattr(self, name)
            if not low <= value <= high:
                raise DataError(f"--{name} must be from {low} to {high}, got {value}")
        if not 0 <= self.heldout < self.identities and not (self.identities == 1 and self.heldout == 0):
            raise DataError(f"--heldout must be in [0, {self.identities - 1}] (some identity must be left to train on)")
        if self.size % 2:
            raise DataError(f"--size must be an even number >= 32, got {self.size}")
        if not 1.0 / FPS <= self.seconds <= MAX_SECONDS:  # NaN fails too
            raise DataError(f"--seconds must be from {1.0 / FPS} (one frame) to {MAX_SECONDS:g}, got {self.seconds}")
        if self.style not in STYLES:
            raise DataError(f"--style must be one of {', '.join(STYLES)}, got {self.style!r}")
        images = self.identities * self.clips * round(self.seconds * FPS) * (1 + self.views)
        if images > MAX_IMAGES:
            raise DataError(
                f"this data set would be {images:,} images ({self.identities} identities x {self.clips} clips x "
                f"{self.seconds:g} s x {FPS} fps x {1 + self.views} cameras); at most {MAX_IMAGES:,} per run"
            )


# Bounds of the options, and of a whole run (10^7 images of 256^2 is about a day on 16 cores).
MAX_SECONDS = 600.0
MAX_IMAGES = 10**7
_INT_LIMITS = (
    ("identities", 1, 100_000),
    ("clips", 1, 10_000),
    ("size", 32, 2048),
    ("views", 0, 16),
    ("heldout", 0, 100_000),
    ("crf", 0, 51),
    ("supersample", 1, 4),
)


def identity_seed(config: SynthConfig, index: int) -> int:
    """Distinct, reproducible seeds: held-out identities are just other seeds."""
    return int(config.seed) * 1_000_003 + index


def identity_id(config: SynthConfig, index: int) -> str:
    return f"id{index:03d}"


def light_direction(ident: Identity) -> np.ndarray:
    az, el = np.radians([ident.light_azimuth, ident.light_elevation])
    return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def render_view(
    ident: Identity,
    state: head.FrameState,
    c2w: np.ndarray,
    K: np.ndarray,
    size: int,
    light_head: np.ndarray,
    supersample: int = 1,
):
    """One image (size, size, 3) uint8 and its label mask (size, size) uint8.

    ``supersample`` s renders s x s rays per pixel and averages them (anti-aliased edges);
    the label is the one of the ray nearest the pixel centre, so masks stay hard.
    """
    s = int(supersample)
    Ks = K.astype(np.float64).copy()
    Ks[:2] *= s  # the same camera at s times the resolution
    o, d = camera.rays(c2w, Ks, size * s, size * s)
    color, labels = raycast.render(head.build_head(ident, state), o, d, light_head, ident.background)
    color = color.reshape(size, s, size, s, 3).mean((1, 3))
    labels = labels.reshape(size, s, size, s)[:, s // 2, :, s // 2]
    return np.round(color * 255.0).astype(np.uint8), labels


def _gaze_track(rng: np.random.Generator, n: int) -> np.ndarray:
    """Piecewise-constant gaze (saccades every 0.5-2 s), degrees."""
    out = np.zeros((n, 2), np.float32)
    i = 0
    while i < n:
        j = i + int(rng.uniform(0.5, 2.0) * FPS)
        out[i:j] = rng.uniform([-8, -5], [8, 5])
        i = j
    return out


def clip_timeline(ident: Identity, clip_seed, config: SynthConfig) -> dict:
    """The audio side of a clip and every per-frame driver, without rendering.

    Separate from rendering so that audio/viseme statistics (the learnability check) are
    cheap to compute for many clips.
    """
    rng = np.random.default_rng(clip_seed)
    seconds = config.seconds
    segments = phonemes.sample_utterance(rng, seconds, ident.voice.rate)
    wave = speech.synthesize(segments, seconds, ident.voice, rng)
    n = audio_mod.num_video_frames(wave.shape[0])
    times = np.arange(n) / FPS
    offsets = np.zeros((config.views, 3), np.float32)
    if config.views:
        offsets[:, 0] = rng.choice([-1, 1], config.views) * rng.uniform(15, 40, config.views)
        offsets[:, 1] = rng.uniform(-15, 15, config.views)
    return {
        "segments": segments,
        "audio": wave,
        "n_frames": n,
        "times": times,
        "visemes": visemes.viseme_track(segments, times),
        "blink": visemes.blink_track(rng, times),
        "motion": visemes.head_motion(rng, times),
        "gaze": _gaze_track(rng, n),
        "view_offsets": offsets,
    }


def source_record(config: SynthConfig) -> dict:
    """The manifest's ``source``; classic data sets keep the record they had before styles."""
    settings = asdict(config)
    if config.style == "classic":
        settings.pop("style")
        return {"kind": "synthtalk", "config": settings}
    return {"kind": "synthtalk", "config": settings, "style": {"name": config.style, "version": STYLES[config.style]}}


def _render_photo_frame(task):
    """Worker body of the photo style: every view of one frame."""
    ident, look, state, pose, cams, K, size, light_world, supersample, augment, grain_seed = task
    return [
        photo_render.render_view(
            ident, look, state, pose, c2w, K, size, light_world, supersample, augment, (*grain_seed, v)
        )
        for v, c2w in enumerate(cams)
    ]


def _render_frame(task):
    """Worker body: every view of one frame (top level, so a process pool can run it)."""
    ident, state, cams, K, size, light_head, supersample = task
    return [render_view(ident, state, c2w, K, size, light_head, supersample) for c2w in cams]


def make_clip(
    ident: Identity,
    clip_seed,
    config: SynthConfig,
    on_frame: Optional[Callable[[int], None]] = None,
    pool=None,
    look=None,
) -> dict:
    """Everything about one clip in memory: audio, frames, masks and ground truth.

    ``pool`` (a concurrent.futures executor) renders frames in parallel; frames are
    independent, so this scales with cores and changes no pixel. ``look`` (a PhotoLook)
    is required by the photo style: speech, visemes, blinks and gaze are the classic
    clip's, the head turns up to 45 degrees and a per-clip camera response is applied.
    """
    photo = config.style == "photo"
    if photo and look is None:
        raise ValueError("the photo style needs the identity's look (sample_photo_identity)")
    tl = clip_timeline(ident, clip_seed, config)
    segments, wave, n, times = tl["segments"], tl["audio"], tl["n_frames"], tl["times"]
    vis, blink, motion, gaze, offsets = tl["visemes"], tl["blink"], tl["motion"], tl["gaze"], tl["view_offsets"]
    if photo:
        photo_rng = np.random.default_rng([*np.atleast_1d(clip_seed).tolist(), _PHOTO_STREAM])
        motion = visemes.head_turns(photo_rng, times)
        augment = photo_render.Augment.sample(photo_rng)

    K = camera.intrinsics(config.size)
    cam_world = camera.front_camera()
    light_world = light_direction(ident)
    size, V = config.size, config.views
    head_pose = np.empty((n, 4, 4))
    c2w = np.empty((n, 4, 4))
    view_c2w = np.empty((V, n, 4, 4))
    tasks = []
    for i in range(n):
        head_pose[i] = camera.pose(*motion[i, :3], translation=motion[i, 3:])
        c2w[i] = np.linalg.inv(head_pose[i]) @ cam_world
        for v in range(V):
            view_c2w[v, i] = camera.free_view(c2w[i], *offsets[v])
        # The light stays put in the world while the head turns under it.
        light_head = head_pose[i][:3, :3].T @ light_world
        state = head.FrameState(jaw=vis[i, 0], width=vis[i, 1], rounding=vis[i, 2], blink=blink[i], gaze=tuple(gaze[i]))
        cams = [c2w[i], *view_c2w[:, i]]
        if photo:
            grain = (*np.atleast_1d(clip_seed).tolist(), i)
            tasks.append(
                (ident, look, state, head_pose[i], cams, K, size, light_world, config.supersample, augment, grain)
            )
        else:
            tasks.append((ident, state, cams, K, size, light_head, config.supersample))

    frames = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    view_frames = np.empty((V, n, size, size, 3), np.uint8)
    view_masks = np.empty((V, n, size, size), np.uint8)
    body = _render_photo_frame if photo else _render_frame
    results = pool.map(body, tasks, chunksize=2) if pool is not None else map(body, tasks)
    for i, rendered in enumerate(results):
        frames[i], masks[i] = rendered[0]
        for v in range(V):
            view_frames[v, i], view_masks[v, i] = rendered[1 + v]
        if on_frame is not None:
            on_frame(1 + V)
    seg_ids = np.array([phonemes.SYMBOLS.index(s.symbol) for s in segments], np.int16)
    clip = {
        "audio": wave,
        "frames": frames,
        "view_frames": view_frames,
        "meta": {
            "c2w": c2w.astype(np.float32),
            "K": K.astype(np.float32),
            "head_pose": head_pose.astype(np.float32),
            "camera_world": cam_world.astype(np.float32),
            "visemes": vis,
            "blink": blink,
            "gaze": gaze,
            "valid": np.ones(n, bool),
            "masks": masks,
            "view_offsets": offsets,
            "view_c2w": view_c2w.astype(np.float32),
            "view_masks": view_masks,
            "phoneme": phonemes.symbol_at(segments, times).astype(np.int16),
            "phoneme_symbols": np.array(phonemes.SYMBOLS),
            "segment_phoneme": seg_ids,
            "segment_start": np.array([s.start for s in segments], np.float32),
            "segment_end": np.array([s.end for s in segments], np.float32),
        },
    }
    if photo:
        clip["meta"]["style"] = np.array(config.style)
        clip["meta"]["style_version"] = np.array(STYLES[config.style], np.int16)
        clip["meta"]["augment"] = augment.as_array().astype(np.float32)  # gain, white balance (3), gamma, ...
    return clip


def write_clip(folder: str, clip: dict, crf: int) -> None:
    os.makedirs(folder, exist_ok=True)
    video.write_video(
        os.path.join(folder, "frames.mp4"), clip["frames"], FPS, clip["audio"], audio_mod.SAMPLE_RATE, crf=crf
    )
    for v, frames in enumerate(clip["view_frames"]):
        video.write_video(os.path.join(folder, f"view{v + 1}.mp4"), frames, FPS, crf=crf)
    audio_mod.write_wav(os.path.join(folder, "audio.wav"), clip["audio"])
    save_npz(os.path.join(folder, "meta.npz"), clip["meta"])  # last: marks the clip complete


def _clip_entry(config: SynthConfig, ident_id: str, clip_id: str, split: str) -> dict:
    rel = f"clips/{clip_id}"
    return {
        "id": clip_id,
        "identity": ident_id,
        "frames": f"{rel}/frames.mp4",
        "audio": f"{rel}/audio.wav",
        "meta": f"{rel}/meta.npz",
        "n_frames": audio_mod.num_video_frames(int(round(config.seconds * audio_mod.SAMPLE_RATE))),
        "split": split,
        "views": [f"{rel}/view{v + 1}.mp4" for v in range(config.views)],
    }


def generate_dataset(
    out: str, config: SynthConfig, overwrite: bool = False, progress: bool = True, workers: int = 1
) -> Manifest:
    """Write (or complete) a SynthTalk data set in ``out``; returns its manifest.

    ``workers`` > 1 renders frames in that many processes; output is identical.
    """
    config.validate()
    os.makedirs(out, exist_ok=True)
    source = source_record(config)
    if os.path.isfile(os.path.join(out, "manifest.json")) and not overwrite:
        existing = load_manifest(out, check_files=False)
        if existing.source.get("config") != source["config"] or existing.source.get("style") != source.get("style"):
            raise DataError(
                f"{out} holds a SynthTalk data set made with other settings; choose another --out or pass --overwrite"
            )
    n_heldout = config.heldout
    identities, plan = [], []
    for i in range(config.identities):
        look = None
        if config.style == "photo":
            ident, look = sample_photo_identity(identity_seed(config, i))
        else:
            ident = sample_identity(identity_seed(config, i))
        split = "heldout" if i >= config.identities - n_heldout else "train"
        iid = identity_id(config, i)
        identities.append({"id": iid, "split": split, **ident.summary()})
        if look is not None:
            identities[-1]["look"] = look.summary()
        for k in range(config.clips):
            plan.append((ident, look, iid, split, k))

    manifest = Manifest(FPS, audio_mod.SAMPLE_RATE, config.size, identities, [], source, SCHEMA_VERSION)
    n_per_clip = audio_mod.num_video_frames(int(round(config.seconds * audio_mod.SAMPLE_RATE))) * (1 + config.views)
    bar = tqdm(total=len(plan) * n_per_clip, unit="img", desc="synth", disable=not progress, leave=False)
    pool = None
    if workers > 1:
        # spawn, not fork: the caller may hold threads (torch, BLAS) that fork would copy mid-flight.
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        for ident, look, iid, split, k in plan:
            clip_id = f"{iid}_c{k:02d}"
            entry = _clip_entry(config, iid, clip_id, split)
            folder = os.path.join(out, "clips", clip_id)
            if overwrite or not os.path.isfile(os.path.join(folder, "meta.npz")):
                clip = make_clip(ident, [config.seed, ident.seed, k], config, on_frame=bar.update, pool=pool, look=look)
                write_clip(folder, clip, config.crf)
            else:
                bar.update(n_per_clip)
            manifest.clips.append(entry)
            write_manifest(out, manifest)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    manifest.root = os.path.abspath(out)
    return manifest
