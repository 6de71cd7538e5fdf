"""The rendering API: ``Renderer(checkpoint).bake(image) -> Identity``, then
``identity.render(speech, pose=...)`` yields uint8 frames, batch by batch.

This is the real-time path of docs/design.md section 4 seen from outside the model: per source image the
model *bakes* once (tri-planes, the canonical occupancy grid); per render the audio tokens
of every frame are computed once up front; then frames are rendered ``batch`` at a time
from the baked state. Timings of every stage are collected in :class:`RenderStats`.

The model is reached only through this interface (``s3d_fast.model``)::

    model = load_model(checkpoint_path, device)
    model.config.model.output_resolution, model.config.model.nerf_resolution
    model.input_resolution
    src = model.prepare_source(image (1,3,R,R) f32 [0,1], mask (1,R,R) int64 | None,
                               c2w (1,4,4) f32, K (1,3,3) f32 in pixels of R)
    baked = model.bake(src)
    baked = model.at_rest(baked, tokens)                       # a kept photo: what quiet input shows
    baked = model.register_mouth(baked, tokens)                # a kept photo: the mouth onto its lips
    baked = model.fit_to_audio(baked, tokens)                  # optional: tighten the grid to this speech
    model.audio_probes(T) -> (P,) int64                        # with fit_to_audio: the frames it reads
    baked = model.fit_to_probes(baked, tokens[probes])         # fit_to_audio from those frames' tokens
    tokens = model.audio_tokens(mel (T,80,16) f32)             # -> (T, D)
    model.config.model.audio_context                           # optional: frames of context either side
    out = model.render_frames(baked, tokens[i:j], c2w (B,4,4), K (B,3,3))
    out["rgb"] (B,3,Rout,Rout) in [0,1]; out["timings"] {stage: seconds}

All tensors handed to the model are torch tensors on the model's device; ``K`` for
``render_frames`` is in pixels of the model's input resolution, like the source's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Callable, Optional

import numpy as np
import torch

from ..data import audio as audio_mod
from ..model import load_model
from . import cameras
from .assets import ASSETS, DEMO_CHECKPOINT, DEMO_IMAGE, DEMO_SPEECH  # noqa: F401 (the API's names)
from .errors import RenderError
from .limits import MAX_BATCH, MAX_SIZE, MIN_SIZE, check_adapt_steps, check_batch, check_size  # noqa: F401 (the API's names)
from .photo_geometry import far_half_plane, frontal_camera, photo_geometry
from .source import Source, load_source

# the speech helpers (speech.py) are part of this API: api.load_speech, api.frame_count...
from .speech import MAX_FPS, MIN_FPS, Speech, check_fps, frame_count, load_speech, mel_windows, read_speech  # noqa: F401
from .stats import RenderStats, synchronize
from .stream import FrameStream, fit_grid

OPENING_PROBES = 4  # frames of open speech that find where the model opens a photo's mouth


def _load_model(path: str, device: torch.device):
    """The one seam between rendering and the model package (tests replace it)."""
    return load_model(path, device)


# ----------------------------------------------------------------------------- inputs


def resolve_device(device="auto") -> torch.device:
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise RenderError(f"--device {device}: CUDA is not available ({why}); use --device cpu or auto")
        return torch.device(device)
    raise RenderError(f"--device must be auto, cpu or cuda, got {device!r}")


def resolve_checkpoint(checkpoint=None) -> str:
    if checkpoint is None:
        if not os.path.exists(DEMO_CHECKPOINT):
            raise RenderError(
                f"the bundled demo checkpoint is not installed ({DEMO_CHECKPOINT} is missing); "
                "pass --checkpoint with one you trained (s3d-fast train)"
            )
        return DEMO_CHECKPOINT
    path = os.fspath(checkpoint)
    if not os.path.exists(path):
        raise RenderError(f"{path}: no such checkpoint")
    return path


# ----------------------------------------------------------------------------- renderer


class Renderer:
    """A loaded model on a device. ``checkpoint=None`` is the bundled demo checkpoint."""

    def __init__(self, checkpoint=None, device="auto"):
        self.device = resolve_device(device)
        self.checkpoint = resolve_checkpoint(checkpoint)
        start = time.perf_counter()
        self.model = _load_model(self.checkpoint, self.device)
        self._opening: Optional[torch.Tensor] = None
        self._rest: Optional[torch.Tensor] = None
        self.load_seconds = time.perf_counter() - start

    @property
    def input_resolution(self) -> int:
        return int(self.model.input_resolution)

    @property
    def output_resolution(self) -> int:
        return int(self.model.config.model.output_resolution)

    def source(self, image, **options) -> Source:
        """Load and align a source image (see :mod:`s3d_fast.render.source`); ``options``:
        ``c2w``, ``K``, ``mask`` of a data-set frame, ``face`` of a photo."""
        return load_source(image, self.input_resolution, **options)

    @torch.inference_mode()
    def bake(
        self,
        image,
        *,
        c2w=None,
        K=None,
        mask=None,
        face: Optional[int] = None,
        keep_photo: Optional[bool] = None,
        adapt_steps: int = 0,
        on_adapt_step: Optional[Callable[[int, int], None]] = None,
    ) -> Identity:
        """Bake one identity: ``image`` is a path, a uint8 (H, W, 3) array, or a
        :class:`Source`; pass ``c2w`` and ``K`` (and ``mask``) for an aligned data-set
        frame given as an array; ``face`` picks one of a photo's faces (numbered from 1, left
        to right; default the largest). ``keep_photo``: frames show the source itself wherever the
        speech does not move the face, the model's frame only where it does, and a photo is
        turned through its own geometry (default: for photos, not for data-set frames;
        False: every frame as the model paints it). ``adapt_steps``: refine what the model
        encoded of this image for that many steps so it redraws it (``adapt_source``; part
        of the bake time), calling ``on_adapt_step(done, adapt_steps)`` after each step."""
        adapt_steps = check_adapt_steps(adapt_steps)
        src = image if isinstance(image, Source) else self.source(image, c2w=c2w, K=K, mask=mask, face=face)
        if src.resolution != self.input_resolution:
            raise RenderError(f"the source is {src.resolution}^2, the model takes {self.input_resolution}^2")
        dev = self.device
        pixels = torch.tensor(src.image, device=dev).permute(2, 0, 1)[None].float().div_(255.0)
        mask = None if src.mask is None else torch.from_numpy(src.mask.astype(np.int64))[None].to(dev)
        c2w_t = torch.as_tensor(src.c2w, dtype=torch.float32, device=dev)[None]
        K_t = torch.as_tensor(src.K, dtype=torch.float32, device=dev)[None]
        start = time.perf_counter()
        if keep_photo is None:
            keep_photo = src.kind == "photo"
        geometry = frontal = None
        if keep_photo and src.landmarks is not None:  # a photo: seen from other cameras through its own face mesh
            points, anchor = photo_geometry(src.image, src.landmarks, src.c2w, src.K)
            geometry = (torch.from_numpy(points)[None].to(dev), torch.from_numpy(anchor)[None].to(dev))
            front = frontal_camera(src.c2w)  # a turned head: rendered facing the camera, taken back into the photo
            if front is not None:
                # A face turned to one side: its far half is seen as its near half mirrored.
                plane = far_half_plane(src.landmarks, src.c2w, src.K)
                plane = None if plane is None else torch.from_numpy(plane)[None].to(dev)
                frontal = (torch.as_tensor(front, dtype=torch.float32, device=dev)[None], K_t, plane)
        source = self.model.prepare_source(
            pixels, mask, c2w_t, K_t, keep_photo=bool(keep_photo), geometry=geometry, frontal=frontal
        )
        rested = keep_photo and hasattr(self.model, "at_rest")
        rest = self._rest_tokens() if adapt_steps > 0 or rested else None  # digital silence's, a quiet room's
        if adapt_steps > 0:  # redrawn at the room's noise, which the checkpoints measured read as closed
            source, _ = self.model.adapt(source, rest[1:], adapt_steps, on_step=on_adapt_step)
        baked = self.model.bake(source)
        if rested:  # what the model shows of this face at rest
            baked = self.model.at_rest(baked, rest)
            registered = self.model.register_mouth(baked, self._opening_tokens())
            if registered is not baked:  # its mouth moved onto the photo's lips: the rest moved with it
                baked = self.model.at_rest(registered, rest)
        synchronize(dev)
        return Identity(self, src, baked, time.perf_counter() - start)

    def _rest_tokens(self) -> torch.Tensor:
        """Audio tokens (2, t, D) of ``audio_mod.rest_mels``: digital silence, a quiet room."""
        if self._rest is None:
            mels = torch.from_numpy(audio_mod.rest_mels()).to(self.device)
            self._rest = torch.cat([self.model.audio_tokens(mel[None]) for mel in mels])  # each alone: no context
        return self._rest

    def _opening_tokens(self) -> torch.Tensor:
        """Audio tokens of the demo sentence's ``OPENING_PROBES`` loudest frames: speech that
        opens the mouth, with which ``register_mouth`` finds where the model opens it."""
        if self._opening is None:
            mel = load_speech(DEMO_SPEECH).mel
            loudest = np.sort(np.argsort(mel.reshape(len(mel), -1).mean(1))[-OPENING_PROBES:])
            tokens = self.model.audio_tokens(torch.from_numpy(mel).to(self.device))  # each frame with its context
            self._opening = tokens[torch.from_numpy(loudest).to(self.device)]
        return self._opening


class Identity:
    """One baked source image; renders it speaking any number of times."""

    def __init__(self, renderer: Renderer, source: Source, baked, bake_seconds: float):
        self.renderer = renderer
        self.source = source
        self.baked = baked
        self.bake_seconds = bake_seconds
        self.stats = RenderStats()

    def cameras(self, n: int, **kwargs) -> np.ndarray:
        """(n, 4, 4) cameras around this identity's source pose; see
        :func:`s3d_fast.render.cameras.camera_sequence` for ``yaw/pitch/roll/orbit/pose_from``."""
        return cameras.camera_sequence(self.source.c2w, n, **kwargs)

    def render(
        self, speech, pose=None, batch: int = 4, size: Optional[int] = None, fps: int = audio_mod.FPS
    ) -> Iterator[np.ndarray]:
        """Yield uint8 (H, W, 3) frames, one per video frame of ``speech``.

        ``speech``: a wav path, 16 kHz float samples, mel windows (T, 80, 16), or a
        :class:`Speech`. ``pose``: None (the source camera held still), (4, 4), or
        (T, 4, 4) camera-to-head matrices. ``size``: output side in pixels (None: the
        model's own); other sizes are resampled with an antialiased bicubic filter.
        ``self.stats`` fills in as frames are produced.
        """
        batch = check_batch(batch)
        speech = load_speech(speech, fps)
        size = check_size(size)
        n = speech.n_frames
        if pose is None:
            poses = cameras.static(self.source.c2w, n)
        else:
            poses = np.asarray(pose, np.float64)
            if poses.shape == (4, 4):
                poses = np.repeat(poses[None], n, 0)
            poses = cameras.check_c2w(poses, "pose")
            if poses.shape[0] != n:
                raise RenderError(f"pose has {poses.shape[0]} cameras for {n} frames of speech")
        return self._frames(speech, poses, int(batch), size)

    def _frames(self, speech: Speech, poses: np.ndarray, batch: int, size: Optional[int]) -> Iterator[np.ndarray]:
        model, dev = self.renderer.model, self.renderer.device
        stats = self.stats = RenderStats()
        stats.setup["bake"] = self.bake_seconds
        # Intrinsics follow the source camera, in pixels of the model's input resolution
        # (the model scales them to its NeRF resolution itself).
        K = np.asarray(self.source.K, np.float64).copy()
        K[:2] *= model.input_resolution / float(self.source.resolution)
        n = speech.n_frames
        # Inference mode is entered per step, never held across a ``yield``: it is
        # thread-global state and would leak into the caller's code between frames.
        with torch.inference_mode():
            start = time.perf_counter()
            tokens = model.audio_tokens(torch.from_numpy(speech.mel).to(dev))
            synchronize(dev)
            stats.setup["audio tokens"] = time.perf_counter() - start
            baked = self.baked
            if hasattr(model, "fit_to_audio"):  # tighten the occupancy grid to this speech's motion
                start = time.perf_counter()
                baked = model.fit_to_audio(self.baked, tokens)
                synchronize(dev)
                stats.setup["fit grid to audio"] = time.perf_counter() - start
            c2w_all = torch.as_tensor(poses, dtype=torch.float32, device=dev)
            K_all = torch.as_tensor(K, dtype=torch.float32, device=dev)[None].expand(n, 3, 3)
        if tokens.shape[0] != n:
            raise RenderError(f"the model made {tokens.shape[0]} audio tokens for {n} frames")
        for i in range(0, n, batch):
            j = min(n, i + batch)
            yield from self._render_batch(baked, tokens[i:j], c2w_all[i:j], K_all[i:j], size, stats)

    def _render_batch(self, baked, tokens, c2w, K, size: Optional[int], stats: RenderStats) -> np.ndarray:
        """uint8 (b, H, W, 3) frames of one batch: tokens (b, ...), c2w (b, 4, 4) and K (b, 3, 3)
        tensors on the model's device; the time of each stage goes to ``stats``."""
        model = self.renderer.model
        out_res = self.renderer.output_resolution
        b = tokens.shape[0]
        with torch.inference_mode():
            start = time.perf_counter()
            out = model.render_frames(baked, tokens, c2w, K)
            t_model = time.perf_counter()
            if tuple(out["rgb"].shape) != (b, 3, out_res, out_res):
                raise RenderError(
                    f"the model returned images of shape {tuple(out['rgb'].shape)}, "
                    f"expected {(b, 3, out_res, out_res)} (a checkpoint/config mismatch?)"
                )
            frames = _to_uint8(out["rgb"], size)  # copies to the host: synchronises
            done = time.perf_counter()
        timings = out.get("timings", {})
        for name, sec in timings.items():
            stats.add_stage(name, sec)
        # Whatever the model did not itemise (launch gaps, glue) stays visible.
        unaccounted = (t_model - start) - sum(timings.values())
        if unaccounted > 0:
            stats.add_stage("other", unaccounted)
        stats.add_stage("resize + to uint8" if size not in (None, out_res) else "to uint8", done - t_model)
        stats.render_seconds += done - start
        stats.frames += b
        return frames

    def fit_grid(self, chunks, sample_rate: int = audio_mod.SAMPLE_RATE, fps: int = audio_mod.FPS, n_frames=None):
        """The occupancy grid fitted to a whole utterance given as chunks of samples, as
        :meth:`render` fits it, read as a stream (see :mod:`s3d_fast.render.stream`); pass
        the result to :meth:`stream` as ``grid``."""
        return fit_grid(self, chunks, sample_rate, fps, n_frames)

    def stream(
        self,
        chunks,
        sample_rate: int = audio_mod.SAMPLE_RATE,
        *,
        fps: int = audio_mod.FPS,
        pose=None,
        batch: int = 1,
        size: Optional[int] = None,
        grid="reference",
    ):
        """Frames while the speech arrives: ``chunks`` is an iterable of sample arrays at
        ``sample_rate``; iterating the returned :class:`s3d_fast.render.stream.FrameStream`
        yields each frame with its presentation time as soon as its speech has arrived, and
        its ``set_camera`` changes the camera of the frames not yet rendered. ``grid``:
        "reference" (fitted once per identity to the demo sentence), "baked", or
        :meth:`fit_grid`'s result. See :mod:`s3d_fast.render.stream`."""
        return FrameStream(self, chunks, sample_rate, fps=fps, pose=pose, batch=batch, size=size, grid=grid)


def _to_uint8(rgb: torch.Tensor, size: Optional[int]) -> np.ndarray:
    rgb = rgb.float()
    if size is not None and (rgb.shape[-2], rgb.shape[-1]) != (size, size):
        # Antialiased bicubic: sharp when enlarging, no aliasing when shrinking.
        rgb = torch.nn.functional.interpolate(
            rgb, size=(size, size), mode="bicubic", antialias=True, align_corners=False
        )
    return rgb.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
