"""Rendering a clip for evaluation: its one-shot source, every frame from its own audio
window and camera, and the silent-speech control."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..data import audio
from ..errors import S3DError
from ..metrics.mouth import mouth_opening, mouth_region
from ..render.stats import synchronize
from .scores import to_tensor


def silent_mel(n_frames: int) -> np.ndarray:
    """Per-frame mel windows of n_frames of digital silence: the log-mel of zeros through
    the same front end as speech (every band at the floor, -4), not literal zeros (which
    would be a mid-level, speech-like input to the audio encoder)."""
    n_samples = int(math.ceil(n_frames * audio.SAMPLE_RATE / audio.FPS))
    return audio.mel_windows(audio.log_mel(np.zeros(n_samples, np.float32)), n_frames)


def render_clip(model, source, mel, c2w, K, batch: int, baked=None, keep_score: bool = False) -> dict:
    """Every frame of a clip: rgb (T, 3, Ro, Ro) float on the CPU, score (T, r, r) when
    asked, cavity (T, r, r) the rendered mouth-cavity share when the training-style render
    gives one (else None), and ``seconds`` of model time (audio encoder + rendering; the
    source encoding and baking are timed by the caller)."""
    dev = source.image.device
    mel = torch.as_tensor(mel, dtype=torch.float32, device=dev)
    c2w = torch.as_tensor(c2w, dtype=torch.float32, device=dev)
    K = torch.as_tensor(K, dtype=torch.float32, device=dev)
    T = mel.shape[0]
    rgb, score, cavity = [], [], []
    with torch.inference_mode():
        synchronize(dev)
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
        synchronize(dev)
        seconds = time.perf_counter() - start
    return {
        "rgb": torch.cat(rgb).clamp_(0, 1),
        "score": torch.cat(score) if keep_score else None,
        "cavity": torch.cat(cavity) if cavity else None,
        "seconds": seconds,
    }


def source_frame(data: dict, n: int) -> int:
    """The one-shot source: the usable frame with the smallest jaw opening (a neutral,
    closed mouth, as a portrait photo would be); ties go to the earliest frame."""
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
    image = to_tensor(data["frames"][src : src + 1]).to(device)
    mask = torch.from_numpy(data["masks"][src : src + 1].astype(np.int64)).to(device)
    c2w = torch.as_tensor(np.asarray(data["c2w"][src]), dtype=torch.float32, device=device)[None]
    K = torch.as_tensor(np.asarray(data["K"]), dtype=torch.float32, device=device)[None]
    return model.prepare_source(image, mask, c2w, K)


def adapted_source(model, data: dict, src: int, device, adapt_steps: int):
    """``one_shot_source``, refined for ``adapt_steps`` so the model redraws that frame at
    rest (``S3DNeRF.adapt``, as ``s3d-fast render`` bakes). Returns the source and the
    adaptation's figures (None without steps)."""
    with torch.inference_mode():
        source = one_shot_source(model, data, src, device)
    if adapt_steps <= 0:
        return source, None
    with torch.no_grad():  # a quiet room's noise, as ``Renderer.bake`` adapts
        rest = model.audio_tokens(torch.from_numpy(audio.rest_mels()[1:]).to(device))
    return model.adapt(source, rest, adapt_steps)
