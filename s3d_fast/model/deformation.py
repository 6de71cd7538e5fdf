"""Cross-modal facial deformation field: per observed point, a backward offset into the
canonical (source) face and a correlation score saying how much the audio moves it.

The point's hash-grid encoding is a query over the audio-conditioned region slots; its
soft assignment pools them, and a small head maps (encoding, pooled slot) to the offset
and score. The offset is gated by the score, so the score is exactly the share of the
audio-driven motion a point takes: rendered as a heat map it shows the moving regions
(the lower face), and the deformation regulariser pushes it to zero elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..nn import HashGrid
from .layers import MLP, activate


class DeformationField(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.max_offset = cfg.max_offset
        self.encoding = HashGrid(
            3,
            cfg.hash_levels,
            cfg.hash_features,
            cfg.hash_log2_size,
            cfg.hash_base_resolution,
            cfg.hash_per_level_scale,
            backend="s3d",
        )
        e, d = self.encoding.n_output_dims, cfg.slot_dim
        self.query = nn.Linear(e, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.head = MLP(e + d, cfg.deform_hidden, 4, layers=2)
        # Start near the identity map (tiny offsets, low score), but not exactly at it:
        # a zero last layer would block every gradient to the slots and the audio path.
        nn.init.normal_(self.head[-1].weight, std=1e-2)
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[3] = -2.0
        # The cavity share reads the head's hidden layer, which already holds the point
        # and its audio-conditioned slot. It starts near 0 (bias -4: 2 %), not at 0, so
        # the gradient reaches it.
        self.cavity_head = None
        if cfg.mouth_cavity:
            self.cavity_head = nn.Linear(cfg.deform_hidden, 1)
            nn.init.zeros_(self.cavity_head.weight)
            nn.init.constant_(self.cavity_head.bias, -4.0)

    def forward(self, x: torch.Tensor, slots: torch.Tensor, group_frame=None):
        """x (G, N, 3) observed points in [-1, 1]^3, in G groups (a frame, or a ray);
        slots (F, S, D) per frame; ``group_frame`` (G,) names each group's frame
        (default: group g is frame g).

        Returns offsets (G, N, 3), scores (G, N) in (0, 1), assignments (G, N, S) and the
        mouth-cavity share (G, N) in (0, 1), or None without ``mouth_cavity``.
        """
        return self.from_encoding(self.encode(x), slots, group_frame)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Hash-grid encoding of observed points (..., 3) in [-1, 1]^3: the audio-free part
        of the field, which a caller probing many frames at the same points computes once."""
        return self.encoding(((x + 1) * 0.5).reshape(-1, 3)).view(*x.shape[:-1], -1)

    def from_encoding(self, h: torch.Tensor, slots: torch.Tensor, group_frame=None):
        """``forward`` from ``encode``'s output h (G, N, E)."""
        # The slots are few and shared by every point of a frame, so the slot-side
        # products are folded into per-frame matrices first (exactly the same function):
        #   (h Wq^T + bq) k^T                 = h (Wq^T k^T) + bq k^T
        #   W1 [h; assign v] = W1h h + assign (v W1p^T)
        # per point that is E x S and S x hidden work instead of E x D, D x S and D x hidden.
        k, v = self.key(slots), self.value(slots)
        scale = k.shape[-1] ** -0.5
        q_w, q_b = self.query.weight, self.query.bias
        logit_w = torch.einsum("de,fsd->fes", q_w, k) * scale  # (F, E, S)
        logit_b = torch.einsum("d,fsd->fs", q_b, k) * scale  # (F, S)
        first = self.head[0]
        e = h.shape[-1]
        w_h, w_p = first.weight[:, :e], first.weight[:, e:]
        slot_hidden = torch.einsum("fsd,od->fso", v, w_p)  # (F, S, hidden)
        if group_frame is not None:
            logit_w, logit_b, slot_hidden = logit_w[group_frame], logit_b[group_frame], slot_hidden[group_frame]
        assign = torch.softmax(torch.baddbmm(logit_b.unsqueeze(1), h, logit_w), dim=-1)
        # In place (addmm's backward does not read its output): one (N, hidden) buffer and
        # its copy fewer per call.
        hidden = torch.addmm(first.bias, h.reshape(-1, e), w_h.t()).view(*h.shape[:-1], -1)
        hidden = hidden.baddbmm_(assign, slot_hidden)
        for layer in list(self.head)[1:-1]:
            hidden = activate(layer, hidden)
        return self._outputs(hidden, assign)

    def _outputs(self, hidden: torch.Tensor, assign: torch.Tensor):
        """The head's last hidden layer (..., hidden) -> offset, score, assign, cavity."""
        last = self.head[-1]
        weight, bias = last.weight, last.bias
        if self.cavity_head is not None:  # both heads in one product
            weight = torch.cat([weight, self.cavity_head.weight])
            bias = torch.cat([bias, self.cavity_head.bias])
        # One sigmoid over every output column (a strided slice costs PyTorch's CPU kernels
        # three times a contiguous tensor), the offset's through tanh(v) = 2 sigmoid(2 v) - 1,
        # its doubling folded into the weights.
        double = torch.ones_like(bias)
        double[:3] = 2
        squashed = torch.sigmoid(F.linear(hidden, weight * double[:, None], bias * double))
        score = squashed[..., 3]
        offset = (squashed[..., :3] * 2 - 1) * (self.max_offset * score.unsqueeze(-1))
        cavity = None if self.cavity_head is None else squashed[..., 4]
        return offset, score, assign, cavity

    def reference(self, x: torch.Tensor, slots: torch.Tensor, group_frame=None):
        """The same field written the direct way (query, attention, pool, MLP): the
        specification ``forward`` is tested against."""
        h = self.encoding(((x + 1) * 0.5).reshape(-1, 3)).view(*x.shape[:-1], -1)
        q = self.query(h)
        k, v = self.key(slots), self.value(slots)
        if group_frame is not None:
            k, v = k[group_frame], v[group_frame]
        assign = torch.softmax(torch.einsum("gnd,gsd->gns", q, k) * q.shape[-1] ** -0.5, dim=-1)
        pooled = torch.einsum("gns,gsd->gnd", assign, v)
        hidden = torch.cat([h, pooled], -1)
        for layer in list(self.head)[:-1]:
            hidden = layer(hidden)
        return self._outputs(hidden, assign)
