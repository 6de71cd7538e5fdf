"""Lip-sync scores of a whole clip from a frozen sync expert (LSE-D / LSE-C style).

The definitions follow SyncNet's offset search (Chung & Zisserman 2016), as used for
"LSE-D" and "LSE-C" by Wav2Lip's evaluation: embed every 5-frame video window and every
audio window; for each offset o in [-K, K] frames, average over the clip the Euclidean
distance between the video window centred on frame c and the audio window of frame c + o
(the mean distance curve). Then

- ``lse_d``  = the curve's minimum (lower: the mouth matches the speech better);
- ``lse_c``  = median(curve) - min(curve), the confidence (higher: one offset stands out);
- ``offset`` = the offset o at the minimum (0 for in-sync video; +k when the audio is
  delayed by k frames relative to the video, i.e. the face matches the audio k frames later);
- ``dist_at_zero`` = the curve at o = 0 (the distance at the true offset).

Our expert's embeddings are unit vectors, so distances lie in [0, 2] (the original
SyncNet's are unnormalised: absolute values are comparable between models only if they
share one expert). Unlike SyncNet's reference code, which pads the audio embeddings with
zeros at the clip's ends, each offset averages only the windows whose shifted audio lies
inside the clip.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model.syncnet import N_FRAMES, SyncNet, lower_face


def _frames_tensor(frames) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames as an array must be (T, H, W, 3), got shape {frames.shape}")
        t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        return t.float() / 255.0 if frames.dtype == np.uint8 else t.float()
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a (T, 3, H, W) tensor or (T, H, W, 3) array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames as a tensor must be (T, 3, H, W), got {tuple(frames.shape)}")
    return frames.detach().float()


def shift_audio(mel, frames: int):
    """Per-frame mel windows delayed by ``frames`` video frames (circularly: a 1 s shift of a
    4 s clip keeps speech in every window rather than padding a second of one repeated window)."""
    if isinstance(mel, torch.Tensor):
        return torch.roll(mel, int(frames), dims=0)
    return np.roll(np.asarray(mel), int(frames), axis=0)


@torch.no_grad()
def clip_embeddings(syncnet: SyncNet, frames, mel, batch: int = 128):
    """Video embeddings of every 5-frame window (T-4, D) and audio embeddings of every frame (T, D)."""
    f = _frames_tensor(frames)
    mel = torch.as_tensor(np.asarray(mel) if not isinstance(mel, torch.Tensor) else mel).float()
    t = f.shape[0]
    if mel.shape[0] != t:
        raise ValueError(f"frames ({t}) and mel windows ({mel.shape[0]}) must cover the same frames")
    if t < N_FRAMES:
        raise ValueError(f"a clip needs at least {N_FRAMES} frames, got {t}")
    was_training = syncnet.training
    syncnet.eval()
    c = syncnet.config
    crops = torch.cat([lower_face(f[a : a + batch], c.face_size, c.crop_rows, c.crop_cols) for a in range(0, t, batch)])
    windows = crops.unfold(0, N_FRAMES, 1).permute(0, 4, 1, 2, 3)  # (T-4, 5, 3, S, S)
    video = torch.cat(
        [syncnet.embed_crops(windows[a : a + batch].contiguous()) for a in range(0, t - N_FRAMES + 1, batch)]
    )
    audio = torch.cat([syncnet.embed_audio(mel[a : a + batch]) for a in range(0, t, batch)])
    syncnet.train(was_training)
    return video, audio


def sync_scores(syncnet: SyncNet, frames, mel, max_offset: int = 15, batch: int = 128) -> dict[str, object]:
    """LSE-D / LSE-C style scores of one clip (see the module docstring).

    ``frames``: (T, 3, H, W) float tensor in [0, 1] or (T, H, W, 3) uint8 array, face-aligned;
    ``mel``: (T, 80, 16) per-frame log-mel windows. Returns ``lse_d``, ``lse_c``, ``offset``,
    ``dist_at_zero``, ``offsets`` and ``curve`` (lists).
    """
    if max_offset < 1:
        raise ValueError(f"max_offset must be >= 1, got {max_offset}")
    video, audio = clip_embeddings(syncnet, frames, mel, batch)
    t = audio.shape[0]
    centre = torch.arange(video.shape[0]) + N_FRAMES // 2
    offsets = list(range(-max_offset, max_offset + 1))
    curve = []
    for o in offsets:
        a = centre + o
        ok = (a >= 0) & (a < t)
        if not bool(ok.any()):
            raise ValueError(f"a clip of {t} frames is too short for offsets up to {max_offset}")
        curve.append(float((video[ok] - audio[a[ok]]).norm(dim=1).mean()))
    c = np.asarray(curve)
    i = int(c.argmin())
    return {
        "lse_d": float(c[i]),
        "lse_c": float(np.median(c) - c[i]),
        "offset": offsets[i],
        "dist_at_zero": float(c[max_offset]),
        "offsets": offsets,
        "curve": curve,
    }
