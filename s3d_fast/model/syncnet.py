"""The lip-sync expert: a SyncNet-style pair of encoders (docs/design.md section 4, "Lip-sync discriminator").

The idea (SyncNet, Chung & Zisserman 2016; used as a frozen "expert" by Wav2Lip): embed a
short stack of lower-face frames and the speech heard over the same 0.2 s into one space,
so that in-sync pairs lie close (high cosine similarity) and time-shifted pairs far apart.
Trained once on the data (in-sync vs shifted pairs, :mod:`.sync_training`), then frozen;
the generator is penalised when its frames and the driving audio do not embed together.

Inputs, and why they look like this:
- **Video**: 5 consecutive frames (0.2 s at 25 fps). Frames are face-aligned crops (docs/design.md section 5),
  so the mouth sits in a fixed region: :func:`lower_face` cuts rows [1/2, 1) and the
  central columns [1/4, 3/4) of every frame (mouth and chin, no eyes: blinks and gaze carry
  no speech) and area-resizes the square to ``face_size``^2. The 5 RGB crops are stacked
  along channels (15 channels), so the first convolution sees motion directly.
- **Audio**: ONE 80 x 16 log-mel window, the one owned by the middle (3rd) frame. docs/design.md section 5a
  gives every video frame the 16 mel frames (0.2 s) centred on its time, and the 5 frames
  s..s+4 span [s/25, (s+5)/25) s, whose centre is frame s+2's time: frame s+2's window is
  exactly "the 0.2 s of speech under the 5 frames". Concatenating all five per-frame
  windows would repeat the same audio five times over (they overlap by 12-13 mel frames)
  for 5x the audio compute and no new information. Callers may pass the dataset's
  per-frame windows (B, 5, 80, 16); the middle one is taken.

Both encoders end in an L2-normalised embedding; the sync probability is the cosine
similarity mapped into (0, 1) by a learnt, monotone map p = sigmoid(scale * cos + bias)
(SigLIP's parameterisation; scale > 0). A fixed map such as (1 + cos) / 2 would ask every
wrong audio window to sit opposite the face's embedding, which cannot hold for all of them
at once; with a learnt threshold, shifted pairs need only be far from aligned.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_path

N_FRAMES = 5  # frames per window (0.2 s at 25 fps)
N_MELS = 80
MEL_STEP = 16  # mel frames per window (0.2 s at 80 frames/s)
_MEL_SCALE = 4.0  # log-mel lives in [-4, 4] (s3d_fast.data.audio)
_EPS = 1e-6

FORMAT_VERSION = 1  # of the safetensors file written by save_syncnet


MAX_FACE_SIZE, MAX_CHANNELS, MAX_STAGES = 256, 1024, 8


@dataclass(frozen=True)
class SyncNetConfig:
    """Sizes of the sync expert.

    Defaults: ~1.0 M parameters; a training step of 64 windows takes ~0.2-0.3 s on one CPU core.
    """

    face_size: int = 48  # side of the square lower-face crop after resizing
    crop_rows: tuple[float, float] = (0.5, 1.0)  # fraction of frame height kept (lower half)
    crop_cols: tuple[float, float] = (0.25, 0.75)  # fraction of frame width kept (central half)
    face_channels: tuple[int, ...] = (32, 64, 96, 128)
    audio_channels: tuple[int, ...] = (32, 64, 96, 128)
    embed_dim: int = 128

    def validate(self) -> None:
        # Bounded above too: a weights file's config is data, and absurd sizes would be
        # allocated before its tensors are even read.
        if not isinstance(self.face_size, int) or not 16 <= self.face_size <= MAX_FACE_SIZE:
            raise ValueError(f"face_size must be an integer from 16 to {MAX_FACE_SIZE}, got {self.face_size}")
        sizes = [*self.face_channels, *self.audio_channels, self.embed_dim]
        if not all(isinstance(c, int) and 1 <= c <= MAX_CHANNELS for c in sizes):
            raise ValueError(f"channel counts and embed_dim must be integers from 1 to {MAX_CHANNELS}, got {sizes}")
        if max(len(self.face_channels), len(self.audio_channels)) > MAX_STAGES:
            raise ValueError(f"face_channels / audio_channels hold at most {MAX_STAGES} stages")
        for name in ("crop_rows", "crop_cols"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"{name} must be (lo, hi) with 0 <= lo < hi <= 1, got {(lo, hi)}")
        if len(self.face_channels) < 2 or len(self.audio_channels) < 2 or self.embed_dim < 1:
            raise ValueError("face_channels / audio_channels need >= 2 entries and embed_dim >= 1")

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> SyncNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown SyncNetConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _check_frames(frames: torch.Tensor, name: str = "frames") -> None:
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(frames).__name__}")
    if not frames.is_floating_point():
        raise TypeError(f"{name} must be float in [0, 1], got {frames.dtype}")
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(f"{name} must be (..., 3, H, W), got shape {tuple(frames.shape)}")


def lower_face(frames: torch.Tensor, size: int = 48, rows=(0.5, 1.0), cols=(0.25, 0.75)) -> torch.Tensor:
    """Mouth-and-chin crop of face-aligned frames: (..., 3, H, W) -> (..., 3, size, size).

    Rows ``rows`` and columns ``cols`` (fractions of the frame) are kept and area-resized
    (an average over each output pixel's footprint: anti-aliased, and differentiable, so
    the generator's gradient reaches every input pixel of the crop).
    """
    _check_frames(frames)
    h, w = frames.shape[-2:]
    y0, y1 = int(round(rows[0] * h)), int(round(rows[1] * h))
    x0, x1 = int(round(cols[0] * w)), int(round(cols[1] * w))
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"frames of {h}x{w} are too small for the crop rows {rows} cols {cols}")
    crop = frames[..., y0:y1, x0:x1]
    lead = crop.shape[:-3]
    crop = crop.reshape(-1, 3, y1 - y0, x1 - x0)
    out = F.adaptive_avg_pool2d(crop, (size, size))
    return out.reshape(*lead, 3, size, size)


def centre_window(mel: torch.Tensor) -> torch.Tensor:
    """(B, 80, 16) windows, or per-frame windows (B, 5, 80, 16) -> the middle frame's (B, 80, 16)."""
    if not isinstance(mel, torch.Tensor):
        raise TypeError(f"mel must be a torch.Tensor, got {type(mel).__name__}")
    if mel.ndim == 4 and mel.shape[1:] == (N_FRAMES, N_MELS, MEL_STEP):
        return mel[:, N_FRAMES // 2]
    if mel.ndim == 3 and mel.shape[1:] == (N_MELS, MEL_STEP):
        return mel
    raise ValueError(
        f"mel must be (B, {N_MELS}, {MEL_STEP}) or (B, {N_FRAMES}, {N_MELS}, {MEL_STEP}), got {tuple(mel.shape)}"
    )


def _conv(cin: int, cout: int, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """conv-BN-ReLU with an identity skip: depth without the optimisation trouble."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn(self.conv(x)))


def _encoder(cin: int, channels, strides, embed_dim: int) -> nn.Sequential:
    # The stem already halves the resolution: full-resolution convolutions would be most of
    # the compute on a CPU for little gain (area resizing has already smoothed the input).
    layers = [_conv(cin, channels[0], 2)]
    for c_prev, c, s in zip(channels[:-1], channels[1:], strides):
        layers += [_conv(c_prev, c, s), _Residual(c)]
    # Pool to 2x2, not 1x1: keep a coarse layout (upper vs lower lip, left vs right).
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(channels[-1] * 4, embed_dim)]
    return nn.Sequential(*layers)


class SyncNet(nn.Module):
    """Face and audio encoders to L2-normalised embeddings (see the module docstring).

    A frozen SyncNet (:func:`freeze`) stays in eval mode even if a parent module calls
    ``.train()``: its batch-norm statistics must not drift on generator outputs.
    """

    def __init__(self, config: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        config.validate()
        self.config = config
        nf, na = len(config.face_channels) - 1, len(config.audio_channels) - 1
        self.face = _encoder(3 * N_FRAMES, config.face_channels, [2] * nf, config.embed_dim)
        # Audio (80 mel x 16 time): the stem gives 40 x 8; then halve the mel axis every stage
        # and time once more (8 -> 4).
        a_strides = [(2, 2) if i < 1 else (2, 1) for i in range(na)]
        self.audio = _encoder(1, config.audio_channels, a_strides, config.embed_dim)
        # p = sigmoid(scale * cos + bias), scale = exp(log_scale) > 0 (SigLIP's parameterisation):
        # starts at scale 10 with the decision threshold at cos = 0.5, so in-sync pairs must
        # align while shifted pairs need only be far from aligned (not opposite: a face cannot
        # be opposite to every wrong audio window at once).
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(-5.0))
        self.frozen = False

    def train(self, mode: bool = True):
        return super().train(mode and not self.frozen)

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 5, 3, H, W) float frames in [0, 1] -> (B, embed_dim) unit vectors."""
        _check_frames(frames)
        if frames.ndim != 5 or frames.shape[1] != N_FRAMES:
            raise ValueError(f"frames must be (B, {N_FRAMES}, 3, H, W), got {tuple(frames.shape)}")
        c = self.config
        crops = lower_face(frames, c.face_size, c.crop_rows, c.crop_cols)
        return self.embed_crops(crops)

    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Already-cropped lower faces (B, 5, 3, S, S) in [0, 1] -> (B, embed_dim) unit vectors."""
        s = self.config.face_size
        if crops.ndim != 5 or crops.shape[1:] != (N_FRAMES, 3, s, s):
            raise ValueError(f"crops must be (B, {N_FRAMES}, 3, {s}, {s}), got {tuple(crops.shape)}")
        # Standardise each window (per colour channel over its 5 frames): skin tone and
        # lighting are identity, not speech; what is left is the mouth's shape and motion.
        x = crops.transpose(1, 2)  # (B, 3, 5, S, S)
        mean = x.mean(dim=(2, 3, 4), keepdim=True)
        std = x.std(dim=(2, 3, 4), keepdim=True)
        x = ((x - mean) / (std + 0.02)).transpose(1, 2).flatten(1, 2)
        return F.normalize(self.face(x), dim=1, eps=_EPS)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, 16) log-mel windows (or per-frame (B, 5, 80, 16)) -> (B, embed_dim) unit vectors."""
        mel = centre_window(mel)
        return F.normalize(self.audio(mel.unsqueeze(1) / _MEL_SCALE), dim=1, eps=_EPS)

    def sync_probability(self, video_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
        """Probability (B,) that embedded video and audio windows are in sync."""
        return sync_probability(video_emb, audio_emb, self.log_scale.exp(), self.bias)

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Sync probability (B,) of 5-frame stacks against their audio windows."""
        return self.sync_probability(self.embed_video(frames), self.embed_audio(mel))


def sync_probability(video_emb: torch.Tensor, audio_emb: torch.Tensor, scale=1.0, bias=0.0) -> torch.Tensor:
    """sigmoid(scale * cos + bias) per row: cosine similarity mapped into (0, 1).

    A :class:`SyncNet` passes its learnt ``scale`` and ``bias`` (:meth:`SyncNet.sync_probability`).
    """
    if video_emb.shape != audio_emb.shape or video_emb.ndim != 2:
        raise ValueError(f"embeddings must both be (B, D), got {tuple(video_emb.shape)} and {tuple(audio_emb.shape)}")
    cos = F.cosine_similarity(video_emb, audio_emb, dim=1, eps=_EPS)
    return torch.sigmoid(cos * scale + bias).clamp(_EPS, 1.0 - _EPS)


def sync_bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of sync probabilities against 0/1 labels (mean)."""
    return F.binary_cross_entropy(p, target.to(p.dtype))


def sync_loss(syncnet: SyncNet, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """The generator's lip-sync loss: BCE of the frozen expert's sync probability against 1.

    ``frames`` (B, 5, 3, H, W) generated frames in [0, 1] (any resolution: the crop is in
    fractions of the frame); ``mel`` their audio, (B, 80, 16) or the dataset's per-frame
    (B, 5, 80, 16). Gradients flow to ``frames``; freeze the expert first (:func:`freeze`).
    """
    p = syncnet(frames, mel)
    return sync_bce(p, torch.ones_like(p))


def freeze(syncnet: SyncNet) -> SyncNet:
    """Eval mode for good (batch-norm uses its running statistics) and no parameter gradients."""
    syncnet.frozen = True
    syncnet.eval()
    syncnet.requires_grad_(False)
    return syncnet


def save_syncnet(path, syncnet: SyncNet) -> None:
    """safetensors weights, the config as JSON metadata; written to a temp name, then renamed."""
    meta = {
        "format": "s3d_fast.syncnet",
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(syncnet.config.to_json()),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in syncnet.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def load_syncnet(path, frozen: bool = True) -> SyncNet:
    """Load a :func:`save_syncnet` file; frozen (eval, no grad) unless ``frozen=False``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such SyncNet weights file")
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "s3d_fast.syncnet":
        raise ValueError(f"{path}: not a SyncNet weights file (format {meta.get('format')!r})")
    version = int(meta.get("format_version", "0"))
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: SyncNet format version {version}, this code reads version {FORMAT_VERSION}")
    net = SyncNet(SyncNetConfig.from_json(json.loads(meta["config"])))
    net.load_state_dict(load_file(path))
    return freeze(net) if frozen else net.eval()
