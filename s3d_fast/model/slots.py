"""Region slots: slot attention pools the source's visual tokens into a few facial
regions, and multi-head cross-attention lets each region read the frame's audio tokens.
The result, audio-conditioned region slots, is what the deformation field attends to."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from .layers import MLP, positional_grid


class SlotAttention(nn.Module):
    """Slot attention (Locatello et al. 2020) with learned slot initialisations.

    Learned (not sampled) initial slots make slot k the same facial region for every
    identity and make encoding deterministic, which a renderer that bakes once needs.
    """

    def __init__(self, n_slots: int, dim: int, token_dim: int, iterations: int):
        super().__init__()
        self.iterations = iterations
        self.init = nn.Parameter(torch.randn(n_slots, dim) / math.sqrt(dim))
        self.norm_tokens = nn.LayerNorm(token_dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(token_dim, dim, bias=False)
        self.to_v = nn.Linear(token_dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), MLP(dim, 2 * dim, dim))

    def forward(self, tokens: torch.Tensor):
        """tokens (B, M, token_dim) -> slots (B, S, dim), attention (B, S, M)."""
        B = tokens.shape[0]
        tokens = self.norm_tokens(tokens)
        k, v = self.to_k(tokens), self.to_v(tokens)
        slots = self.init.expand(B, -1, -1)
        scale = k.shape[-1] ** -0.5
        for _ in range(self.iterations):
            q = self.to_q(self.norm_slots(slots))
            # Softmax over slots: tokens compete for slots, which is what makes them regions.
            attn = torch.softmax(torch.einsum("bsd,bmd->bsm", q, k) * scale, dim=1)
            weights = attn / (attn.sum(-1, keepdim=True) + 1e-8)
            updates = torch.einsum("bsm,bmd->bsd", weights, v)
            slots = self.gru(updates.reshape(-1, updates.shape[-1]), slots.reshape(-1, slots.shape[-1])).view_as(slots)
            slots = slots + self.mlp(slots)
        return slots, attn


class RegionSlots(nn.Module):
    """Visual tokens -> region slots; slots x audio tokens -> audio-conditioned slots."""

    def __init__(self, cfg: ModelConfig, token_dim: int):
        super().__init__()
        d = cfg.slot_dim
        self.pos = nn.Linear(4, token_dim)
        self.slot_attention = SlotAttention(cfg.n_slots, d, token_dim, cfg.slot_iterations)
        self.cross = nn.MultiheadAttention(
            d, cfg.attention_heads, kdim=cfg.audio_dim, vdim=cfg.audio_dim, batch_first=True
        )
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.LayerNorm(d), MLP(d, 2 * d, d))

    def regions(self, tokens: torch.Tensor, size: int):
        pos = self.pos(positional_grid(size, size, tokens.device).to(tokens.dtype))
        return self.slot_attention(tokens + pos)

    def condition(self, slots: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """slots (B, S, D), audio tokens (B, T, t, Da) -> (B, T, S, D), one set per frame."""
        B, T = audio.shape[:2]
        s = slots.unsqueeze(1).expand(B, T, *slots.shape[1:]).reshape(B * T, *slots.shape[1:])
        a = audio.reshape(B * T, *audio.shape[2:])
        heard, _ = self.cross(self.norm(s), a, a, need_weights=False)
        s = s + heard
        s = s + self.mlp(s)
        return s.view(B, T, *slots.shape[1:])
