"""Audio encoder: fully convolutional over log-mel windows (docs/design.md sections 4 and 5a), no pretrained
speech model. Per video frame its (80, 16) window becomes a few tokens; a temporal
convolution across neighbouring frames then gives each token context, so a viseme can
anticipate the next phoneme (co-articulation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig


class AudioEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, n_mels: int = 80, window: int = 16):
        super().__init__()
        d, t = cfg.audio_dim, cfg.audio_tokens_per_frame
        if window % t:
            raise ValueError(f"audio_tokens_per_frame ({t}) must divide the mel window ({window})")
        self.dim, self.tokens = d, t
        self.frame = nn.Sequential(
            nn.Conv1d(n_mels, d, 3, padding=1),
            nn.SiLU(),
            nn.Conv1d(d, d, 3, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool1d(t),
            nn.Conv1d(d, d, 1),
        )
        k = 2 * cfg.audio_context + 1
        self.context = nn.Conv1d(d * t, d * t, k, groups=t)
        self.norm = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, T, 80, 16) for T consecutive frames -> tokens (B, T, tokens_per_frame, D)."""
        if mel.dim() != 4:
            raise ValueError(f"AudioEncoder: mel must be (B, T, n_mels, window), got {tuple(mel.shape)}")
        B, T = mel.shape[:2]
        # Log-mel is in dB-like units around [-4, 4]; centre each window so loudness
        # changes matter less than spectral shape.
        x = mel.flatten(0, 1)
        x = x - x.mean(dim=(1, 2), keepdim=True)
        tok = self.frame(x).transpose(1, 2)  # (B*T, t, D)
        # Channels token-major, so the grouped temporal conv gives each token slot its own filter.
        seq = tok.reshape(B, T, self.tokens * self.dim).transpose(1, 2)
        seq = seq + self._context(seq)
        out = seq.transpose(1, 2).reshape(B, T, self.tokens, self.dim)
        return self.norm(out)

    def _context(self, seq: torch.Tensor) -> torch.Tensor:
        # Replicate-pad in time so the first and last frames see a plausible context.
        k = self.context.kernel_size[0] // 2
        x = F.pad(seq, (k, k), mode="replicate")
        return F.conv1d(x, self.context.weight, self.context.bias, groups=self.context.groups)
