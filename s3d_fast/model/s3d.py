"""The assembled S^3D-NeRF generator (DESIGN 4): source image + audio + camera -> frame.

``prepare_source`` encodes an identity once (tri-planes, region slots, the pyramid that
conditions super-resolution); ``audio_tokens`` encodes a whole utterance once; ``render``
draws frames in the training style (stratified + importance samples); ``bake`` and
``render_frames`` are the real-time path (an occupancy grid of the canonical head, then
marching only occupied cells).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..nn import OccupancyGrid
from .appearance import AppearanceEncoder, SourceFeatures
from .audio import AudioEncoder
from ..config import ModelConfig, check_model_config
from .decoder import Decoder
from .deformation import DeformationField
from .reproject import reproject_source
from .rays import box_intersection, camera_rays, importance_edges, scaled_intrinsics, stratified_edges
from .slots import RegionSlots
from .superres import MOTION_CHANNELS, SuperResolution

# Named regions for torch.profiler (free when no profiler runs): `s3d-fast train
# --profile-steps N` reports the share of a training step each one takes.
stage = torch.profiler.record_function

# Sample ranks along a ray at which the real-time path checks which rays are already
# opaque (see ``S3DNeRF._shade_until_opaque``): a ray enters the dilated grid a few
# samples before the surface, so most rays are done after the first rounds.
SHADE_ROUNDS = (4, 8, 16)
# ``cavity_opening``: the rendered cavity share at which the source starts to darken, and
# at which it is black. Rendered at NeRF resolution and upsampled, the share is blurred:
# in open frames it peaks at 0.8-0.9 on held-out faces and falls through 0.3 at the
# interior's edge; below 0.1 it is the closed-mouth floor (the head's initial 2 %).
OPENING_FROM, OPENING_FULL = 0.1, 0.5


@dataclass
class Source:
    """One encoded identity (or a batch of B): everything per-frame rendering reuses."""
    features: SourceFeatures
    slots: torch.Tensor  # (B, S, D) region slots
    slot_attention: torch.Tensor  # (B, S, M) which source tokens each slot took
    image: torch.Tensor  # (B, 3, R, R) the unmasked source, conditions super-resolution
    background: torch.Tensor  # (B, 3, r, r) the source's background (head masked out) at NeRF resolution
    camera: Optional[tuple] = None  # (c2w (B, 4, 4), K (B, 3, 3)) of the source, when known: reprojection
    # (B, 1, R, R) in [0, 1]: the source's lips and mouth, grown by the jaw's reach
    # (``mouth_keep_out``), where super-resolution may not copy the source. None: no lip
    # labels, or the option is off.
    keep_out: Optional[torch.Tensor] = None


@dataclass
class Baked:
    source: Source
    grid: OccupancyGrid
    shell: torch.Tensor  # (B, 1, n, n, n) the carved surface shell, before dilation
    solid: torch.Tensor  # (B, 1, n, n, n) every cell over the density threshold, not carved
    dilation: int  # cells the kept cells were grown by (bake: the offset budget; fit_to_audio: its margin)

    @property
    def occupied_fraction(self) -> float:
        return float(self.grid.binaries.float().mean())


def mouth_keep_out(mask: Optional[torch.Tensor], like: torch.Tensor, reach: float) -> Optional[torch.Tensor]:
    """(B, R, R) labels -> (B, 1, R, R) in [0, 1]: where super-resolution may not copy the
    source. The lips and mouth (labels >= 2) grown down by ``reach`` of the image, how far
    the jaw drops, and by a third of that up and sideways, with edges softened over the
    same third so the painted region leaves no seam. None when ``reach`` is 0, there is no
    mask, or it has no lip labels."""
    if reach <= 0 or mask is None or not bool((mask >= 2).any()):
        return None
    size = mask.shape[-1]
    down = max(1, round(reach * size))
    side = max(1, round(reach * size / 3))
    lips = (mask >= 2).to(like.dtype).unsqueeze(1)
    # Output row y takes input rows y - down .. y + side: lips up to ``down`` above a pixel
    # (the jaw's reach below the mouth) or up to ``side`` below it.
    grown = F.max_pool2d(F.pad(lips, (side, side, down, side)), (down + side + 1, 2 * side + 1), stride=1)
    return F.avg_pool2d(grown, 2 * side + 1, stride=1, padding=side, count_include_pad=False)


def open_mouth(images: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """images (F, 3, R, R), share (F, 1, r, r) the rendered cavity share -> the images
    darkened to black where the share says the ray looks into the mouth: the mouth's
    unlit interior (``cavity_opening``), cut into the source super-resolution is
    conditioned on and blends in, and into the frame it paints."""
    share = F.interpolate(share.to(images.dtype), size=images.shape[-2:], mode="bilinear", align_corners=False)
    opened = ((share - OPENING_FROM) / (OPENING_FULL - OPENING_FROM)).clamp(0, 1)
    return images * (1 - opened)


def face_mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """(B, H, W) label map -> (B, 1, H, W) float, 1 on face, lips and mouth."""
    if mask is None:
        return torch.ones_like(like[:, :1])
    return (mask > 0).to(like.dtype).unsqueeze(1)


class S3DNeRF(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_model_config(cfg)
        self.cfg = cfg
        self.input_resolution = cfg.input_resolution
        self.encoder = AppearanceEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        self.regions = RegionSlots(cfg, self.encoder.token_channels)
        self.deformation = DeformationField(cfg)
        self.decoder = Decoder(cfg)
        self.superres = SuperResolution(cfg, self.encoder.token_channels, self.encoder.level_sizes)

    # -- per identity / per utterance -------------------------------------------------
    def prepare_source(self, image, mask=None, c2w=None, K=None) -> Source:
        """image (B, 3, R, R) in [0, 1]; mask (B, R, R) labels or None (whole image is face).
        The encoder works in the image plane and the tri-planes it writes are in canonical
        head space by training. The source camera (c2w (B, 4, 4), K (B, 3, 3)), when
        given, lets rendering reproject the source into each frame's view for the
        super-resolution blend (``reproject.py``); training gives it when
        ``train.reproject_source`` is on."""
        R = self.input_resolution
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[-2:] != (R, R):
            raise ValueError(f"source image must be (B, 3, {R}, {R}), got {tuple(image.shape)}")
        with stage("appearance encoder"):
            head = face_mask(mask, image)
            feats = self.encoder(image, head)
        with stage("slot attention"):
            slots, attn = self.regions.regions(feats.tokens, feats.token_size)
        r = self.cfg.nerf_resolution
        # Behind the render: the source with its head masked out. Not the whole source,
        # whose head would already match a target so well that the radiance field could
        # learn to vanish (density collapsing to zero, and with it every gradient).
        bg = F.interpolate(image * (1 - head), size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        camera = (c2w, K) if c2w is not None and K is not None else None
        return Source(feats, slots, attn, image, bg, camera, mouth_keep_out(mask, image, self.cfg.mouth_keep_out))

    def audio_tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (T, 80, 16) or (B, T, 80, 16) -> tokens (T, t, D) or (B, T, t, D)."""
        with stage("audio encoder"):
            if mel.dim() == 3:
                return self.audio(mel.unsqueeze(0))[0]
            return self.audio(mel)

    # -- the radiance field --------------------------------------------------------------
    def field(self, source: Source, slots: torch.Tensor, x: torch.Tensor, ray_frame: torch.Tensor,
              ray_source: torch.Tensor):
        """x (A, n, 3) observed points along A rays; slots (F, S, D) audio-conditioned
        per frame; ray_frame / ray_source (A,) each ray's frame and source, sorted by
        source. Returns sigma (A, n), feature (A, n, C), offset (A, n, 3), score (A, n)
        and the mouth-cavity share (A, n), or None without ``mouth_cavity``."""
        with stage("deformation"):
            offset, score, _, cavity = self.deformation(x, slots, ray_frame)
        canonical = x + offset
        B = source.slots.shape[0]
        counts = torch.bincount(ray_source, minlength=B).tolist()
        sigmas, feats = [], []
        for b, part in enumerate(torch.split(canonical, counts)):
            planes = [p[b:b + 1] for p in source.features.planes]
            with stage("tri-planes + decoder"):
                sigma, feat = self.decoder(planes, part.reshape(1, -1, 3))
            sigmas.append(sigma.view(part.shape[:2]))
            feats.append(feat.view(*part.shape[:2], -1))
        return torch.cat(sigmas), self.decoder.blend_cavity(torch.cat(feats), cavity), offset, score, cavity

    def render(self, source: Source, tokens: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor,
               stratified: bool = True, ray_mask: Optional[torch.Tensor] = None) -> dict:
        """Training-style rendering of T frames per source.

        tokens (B, T, t, D); c2w (B, T, 4, 4) camera-to-head; K (B, 3, 3) at the input
        resolution; ray_mask (B, T, r, r) bool: the rays to render (training renders the
        head and a sample of the background; the rest is background). Returns rgb
        (B, T, 3, Ro, Ro), rgb_low (B, T, 3, r, r), opacity (B, T, r, r), score
        (B, T, r, r) (the correlation heat map), offset_sq (mean squared offset), and with
        ``mouth_cavity`` cavity (B, T, r, r), the rendered share of the cavity feature.
        """
        cfg = self.cfg
        B, T = c2w.shape[:2]
        r = cfg.nerf_resolution
        R = r * r
        with stage("cross-attention"):
            slots = self.regions.condition(source.slots, tokens).reshape(B * T, *source.slots.shape[1:])
        Kr = scaled_intrinsics(K, cfg.input_resolution, r).repeat_interleave(T, 0)
        o, d = camera_rays(c2w.reshape(B * T, 4, 4), Kr, r)
        all_o, all_d = o, d
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)
        near, far = box_intersection(o, d)
        active = far > near
        if ray_mask is not None:
            active = active & ray_mask.reshape(-1)
        rays = torch.nonzero(active).squeeze(1)
        o, d, near, far = o[rays], d[rays], near[rays], far[rays]
        ray_frame = rays // R
        ray_source = ray_frame // T

        def points(edges):
            mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
            return o[:, None, :] + d[:, None, :] * mids[..., None]

        edges = stratified_edges(near, far, cfg.n_coarse, jitter=stratified)
        with torch.no_grad(), stage("coarse pass (no grad)"):
            sigma_c = self.field(source, slots, points(edges), ray_frame, ray_source)[0]
            w, _, _ = ops.render_weight_from_density(edges[:, :-1].contiguous(), edges[:, 1:].contiguous(),
                                                     sigma_c.float())
            edges = importance_edges(edges, w, cfg.n_fine, deterministic=not stratified)
        sigma, feat, offset, score, cavity = self.field(source, slots, points(edges), ray_frame, ray_source)
        channels = [feat, offset / cfg.max_offset, score.unsqueeze(-1)]
        if cavity is not None:  # rendered for its loss, not shown to super-resolution
            channels.append(cavity.unsqueeze(-1))
        values = torch.cat(channels, -1)
        with stage("compositing"):
            colors, opacity, depth = ops.composite(  # float32 also under CUDA autocast
                sigma.float(), values.float(), t_starts=edges[:, :-1].contiguous(), t_ends=edges[:, 1:].contiguous()
            )
        cavity_image = None
        if cavity is not None:
            cavity_image = colors.new_zeros(B * T * R).index_copy(0, rays, colors[:, -1]).view(B, T, r, r)
            colors = colors[:, :-1]
        C = colors.shape[-1]
        full = colors.new_zeros(B * T * R, C).index_copy(0, rays, colors)
        full_opacity = opacity.new_zeros(B * T * R, 1).index_copy(0, rays, opacity)
        offset_sq = offset.square().sum(-1).mean() if offset.numel() else offset.new_zeros(())
        view = None
        if source.camera is not None:  # no source camera, nothing to reproject: no depth image
            full_depth = depth.new_zeros(B * T * R, 1).index_copy(0, rays, depth)
            view = (all_o.view(B * T, R, 3), all_d.view(B * T, R, 3), full_depth.view(B * T, R))
        share = None if cavity_image is None else cavity_image.view(B * T, 1, r, r)
        out = self._finish(source, full, full_opacity, B, T, offset_sq, view, share)
        if cavity_image is not None:
            out["cavity"] = cavity_image
        return out

    def _finish(self, source: Source, rendered, opacity, B: int, T: int, offset_sq, view=None, share=None) -> dict:
        """``view``: (origins, directions (B*T, r*r, 3), depth (B*T, r*r)) of the rendered
        rays, with which a source that knows its camera is reprojected into each frame.
        ``share`` (B*T, 1, r, r): the rendered cavity share, where ``cavity_opening`` opens
        the source's mouth."""
        r = self.cfg.nerf_resolution
        C = self.cfg.feature_channels
        img = rendered.view(B * T, r, r, C + MOTION_CHANNELS).permute(0, 3, 1, 2)
        alpha = opacity.view(B * T, 1, r, r)
        score = img[:, -1:]
        bg = source.background.repeat_interleave(T, 0)
        rgb_low = img[:, :3] + (1 - alpha) * bg
        features = torch.cat([rgb_low, img[:, 3:]], 1)
        frame_images, keep_out = None, source.keep_out
        if source.camera is not None and view is not None:
            with stage("reproject source"):
                # The keep-out region travels as a fourth channel: it moves with the texture it covers.
                stacked = source.image if keep_out is None else torch.cat([source.image, keep_out], 1)
                warped = reproject_source(stacked, *source.camera, view[0], view[1], view[2], alpha.view(B * T, -1), T)
                frame_images, keep_out = warped[:, :3], (None if keep_out is None else warped[:, 3:])
        elif keep_out is not None:
            keep_out = keep_out.repeat_interleave(T, 0)
        opening = self.cfg.cavity_opening and share is not None
        if opening:
            with stage("open the mouth"):
                seen = frame_images if frame_images is not None else source.image.repeat_interleave(T, 0)
                frame_images = open_mouth(seen, share)
        with stage("super-resolution"):
            rgb = self.superres(features, source.features.pyramid, source.image, T, frame_images, keep_out)
        if opening:
            # And in front of what super-resolution paints: trained with the opening only
            # in its conditioning, it learned to paint the source's lips back over it
            # (held-out mouth-opening correlation 0.68 before, 0.53 after; README).
            rgb = open_mouth(rgb, share)
        Ro = rgb.shape[-1]
        return {
            "rgb": rgb.view(B, T, 3, Ro, Ro),
            "rgb_low": rgb_low.view(B, T, 3, r, r),
            "opacity": alpha.view(B, T, r, r),
            "score": score.view(B, T, r, r),
            "offset_sq": offset_sq,
        }

    def forward(self, image, mask, tokens, c2w, K, stratified: bool = True, ray_mask=None, source_c2w=None) -> dict:
        """``source_c2w`` (B, 4, 4), the source's camera when known: it is then reprojected
        into each frame for super-resolution, as rendering does (``reproject.py``)."""
        return self.render(self.prepare_source(image, mask, source_c2w, K), tokens, c2w, K, stratified, ray_mask)

    # -- the real-time path -------------------------------------------------------------
    @torch.no_grad()
    def bake(self, source: Source) -> Baked:
        """Occupancy grid of each canonical head for the real-time path.

        Occupied: canonical cells whose decoded density exceeds ``bake_threshold``. The
        deep interior is carved out (cells more than ``bake_shell`` cells inside the
        surface: a ray has stopped before it gets there), then what is left is dilated by
        the largest deformation offset, so every observed point whose canonical point is
        on the shell is kept.
        """
        cfg = self.cfg
        B = source.slots.shape[0]
        res = cfg.bake_resolution
        dev, dt = source.image.device, source.image.dtype
        cells = (torch.arange(res, device=dev, dtype=dt) + 0.5) / res * 2 - 1
        x = torch.stack(torch.meshgrid(cells, cells, cells, indexing="ij"), -1).view(1, -1, 3).expand(B, -1, 3)
        chunk = 1 << 16
        density = torch.cat(
            [self.decoder.density(source.features.planes, x[:, i:i + chunk].contiguous()) for i in range(0, x.shape[1], chunk)], 1
        ).view(B, 1, res, res, res)
        solid = (density > cfg.bake_threshold).float()
        occupied = solid
        if cfg.bake_shell > 0:
            k = cfg.bake_shell
            interior = -F.max_pool3d(-F.pad(solid, (k,) * 6, value=0.0), 2 * k + 1, stride=1)
            occupied = solid * (1 - interior)
        dilate = math.ceil(cfg.max_offset / (2.0 / res))
        return Baked(source, self._grid(occupied, dilate), shell=occupied, solid=solid, dilation=dilate)

    def _grid(self, cells: torch.Tensor, dilate: int, within: Optional[OccupancyGrid] = None) -> OccupancyGrid:
        """The occupancy grid of ``cells`` (B, 1, n, n, n) grown by ``dilate`` cells, kept
        inside ``within`` when given."""
        grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], self.cfg.bake_resolution, n_grids=cells.shape[0]).to(cells.device)
        grid.from_density(cells, threshold=0.5, dilate=dilate)
        if within is not None:
            grid.set_binaries(grid.binaries & within.binaries)
        return grid

    @torch.no_grad()
    def fit_to_audio(self, baked: Baked, tokens: torch.Tensor, probes: int = 16, margin: int = 1) -> Baked:
        """Tighten the bake to one utterance by asking the deformation field where the
        head is seen from, instead of allowing for any offset it could reach.

        ``bake`` keeps every observed cell within ``max_offset`` of the canonical shell.
        Here the corners of every cell go through the deformation for ``probes`` frames
        spread over the utterance, and each corner keeps the range of offsets it showed.
        An observed cell is kept when the box its corners can reach, over that range,
        holds an occupied canonical cell; the kept cells then grow by ``margin`` cells.
        Corners and not centres, because the learned offsets can change by two cells
        within one cell. A large static warp costs nothing, and where the speech moves
        the field only the cells it moves widen. Frames between the probes are covered
        while each corner's offset stays in the range the probes showed (the margin is
        the allowance for the rest). The result is never larger than the bake it tightens.
        """
        cfg = self.cfg
        if baked.source.slots.shape[0] != 1:
            return baked
        res = cfg.bake_resolution
        cell = 2.0 / res
        solid = baked.solid[0, 0] > 0.5
        ticks = torch.arange(res + 1, device=tokens.device, dtype=tokens.dtype) * cell - 1
        corners = torch.stack(torch.meshgrid(ticks, ticks, ticks, indexing="ij"), -1).view(1, -1, 3)
        frames = torch.linspace(0, tokens.shape[0] - 1, min(probes, tokens.shape[0])).round().long().unique()
        slots = self.regions.condition(baked.source.slots, tokens[frames].unsqueeze(0))[0]
        encoded = self.deformation.encode(corners)  # the audio-free part, shared by every probe
        low = torch.full_like(corners[0], math.inf)
        high = torch.full_like(corners[0], -math.inf)
        for f in range(slots.shape[0]):
            offset = self.deformation.from_encoding(encoded, slots[f:f + 1])[0][0]
            low, high = torch.minimum(low, offset), torch.maximum(high, offset)

        def per_cell(values, reduce_max):  # (N corners, 3) -> (3, res, res, res) over each cell's 8 corners
            grid = values.t().reshape(1, 3, res + 1, res + 1, res + 1)
            return (F.max_pool3d(grid, 2, stride=1) if reduce_max else -F.max_pool3d(-grid, 2, stride=1))[0]

        box_min = per_cell(corners[0] + low, False)
        box_max = per_cell(corners[0] + high, True)
        # Clamped to the grid: the planes still give density a little outside the box (a
        # point below it reads the xz plane in full), so an outside point counts as the
        # border cell nearest to it.
        lo = torch.floor((box_min + 1) / cell).long().clamp(0, res - 1)
        hi = (torch.floor((box_max + 1) / cell).long() + 1).clamp(1, res)  # exclusive
        seen = _box_count(_summed_volume(solid), lo, hi) > 0
        dilate = min(margin, baked.dilation)
        grid = self._grid(seen.to(baked.shell.dtype)[None, None], dilate, within=baked.grid)
        return Baked(baked.source, grid, shell=baked.shell, solid=baked.solid, dilation=dilate)

    @torch.no_grad()
    def render_frames(self, baked: Baked, tokens: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor,
                      shade_rounds=SHADE_ROUNDS) -> dict:
        """Frames of one baked identity: tokens (F, t, D), c2w (F, 4, 4), K (F, 3, 3) or (3, 3).
        ``shade_rounds``: the sample ranks after which opaque rays stop being shaded
        (empty: shade every marched sample). Returns rgb (F, 3, Ro, Ro) and per-stage
        timings in seconds."""
        cfg = self.cfg
        source = baked.source
        if source.slots.shape[0] != 1:
            raise ValueError("render_frames renders one identity at a time; bake one source image")
        Fn = c2w.shape[0]
        if K.dim() == 2:
            K = K.expand(Fn, 3, 3)
        times = {}
        clock = time.perf_counter()

        def lap(name):
            nonlocal clock
            now = time.perf_counter()
            times[name] = times.get(name, 0.0) + now - clock
            clock = now

        r = cfg.nerf_resolution
        slots = self.regions.condition(source.slots, tokens.unsqueeze(0))[0]  # (F, S, D)
        o, d = camera_rays(c2w, scaled_intrinsics(K, cfg.input_resolution, r), r)
        near, far = box_intersection(o, d)
        lap("audio")
        step = 2.0 / cfg.march_steps
        C = cfg.feature_channels
        rendered = o.new_zeros(Fn, r * r, self._shaded_channels)
        opacity = o.new_zeros(Fn, r * r, 1)
        depth = o.new_zeros(Fn, r * r, 1)
        for f in range(Fn):
            ray_idx, t0, t1 = baked.grid.sampling(
                o[f].contiguous(), d[f].contiguous(), t_min=near[f], t_max=far[f], render_step_size=step,
                early_stop_eps=0.0, grid_indices=torch.zeros(r * r, dtype=torch.long, device=o.device),
            )
            lap("marching")
            if ray_idx.numel() == 0:  # nothing occupied in view: background only
                continue
            kept, sigma, values = self._shade_until_opaque(source, slots[f:f + 1], o[f], d[f], ray_idx, t0, t1,
                                                           r * r, lap, shade_rounds)
            rendered[f], opacity[f], depth[f] = ops.composite(
                sigma, values, ray_indices=ray_idx[kept], n_rays=r * r, t_starts=t0[kept], t_ends=t1[kept],
                early_stop_eps=cfg.early_stop_eps,
            )
            lap("compositing")
        share = None
        if cfg.cavity_opening:
            share = rendered[..., -1].reshape(Fn, 1, r, r)
            rendered = rendered[..., :-1]
        out = self._finish(source, rendered.reshape(-1, C + MOTION_CHANNELS), opacity.view(-1, 1), 1, Fn,
                           o.new_zeros(()), (o, d, depth.view(Fn, -1)), share)
        lap("super-resolution")
        return {"rgb": out["rgb"][0], "score": out["score"][0], "opacity": out["opacity"][0], "timings": times}

    @property
    def _shaded_channels(self) -> int:
        """What the real-time path composites per sample: feature, offset, score and, when
        it opens the mouth, the cavity share last."""
        return self.cfg.feature_channels + MOTION_CHANNELS + int(self.cfg.cavity_opening)

    def _shade_until_opaque(self, source: Source, slots, o, d, ray_idx, t0, t1, n_rays: int, lap,
                            rounds=SHADE_ROUNDS):
        """Deformation + decoder for one frame's marched samples, front to back in rounds
        of sample ranks along each ray; after each round, rays already opaque drop out.

        The grid is dilated by the largest offset, so a ray crosses several cells of
        margin in front of the surface and many behind it, where compositing's early
        stop would discard the work. A ray drops out only when the transmittance in front
        of its next sample is below ``early_stop_eps`` (with a margin for rounding), which
        is exactly the test compositing applies, so the image does not change.

        Returns (kept (S,) bool: the samples shaded, in order), sigma (K,), values (K, C'):
        feature, offset, score and, with ``cavity_opening``, the cavity share.
        """
        cfg = self.cfg
        n = ray_idx.numel()
        counts = torch.bincount(ray_idx, minlength=n_rays)
        rank = torch.arange(n, device=ray_idx.device) - (torch.cumsum(counts, 0) - counts)[ray_idx]
        # Optical depth at which transmittance reaches early_stop_eps, less a rounding margin.
        stop_depth = -math.log(cfg.early_stop_eps) * (1 + 1e-4) + 1e-4 if cfg.early_stop_eps > 0 else math.inf
        depth = t0.new_zeros(n_rays)
        kept = torch.zeros(n, dtype=torch.bool, device=ray_idx.device)
        sigma_all = t0.new_empty(n)
        values_all = t0.new_empty(n, self._shaded_channels)
        bounds = list(rounds) + [math.inf]
        lo = 0
        for hi in bounds:
            chosen = (rank >= lo) & (depth[ray_idx] <= stop_depth)
            if hi != math.inf:
                chosen &= rank < hi
            idx = torch.nonzero(chosen).squeeze(1)
            lo = hi
            if idx.numel() == 0:
                continue
            rays = ray_idx[idx]
            x = o[rays] + d[rays] * (0.5 * (t0[idx] + t1[idx]))[:, None]
            offset, score, _, cavity = self.deformation(x.unsqueeze(0), slots)
            lap("deformation")
            sigma, feat = self.decoder(source.features.planes, x.unsqueeze(0) + offset)
            feat = self.decoder.blend_cavity(feat, cavity)
            lap("decoder")
            sigma_all[idx] = sigma[0]
            values = [feat[0], offset[0] / cfg.max_offset, score[0, :, None]]
            if cfg.cavity_opening:
                values.append(cavity[0, :, None])
            values_all[idx] = torch.cat(values, -1)
            kept[idx] = True
            depth.index_add_(0, rays, sigma[0] * (t1[idx] - t0[idx]))
        return kept, sigma_all[kept], values_all[kept]


def _summed_volume(occupied: torch.Tensor) -> torch.Tensor:
    """(n, n, n) bool -> (n+1)^3 int32 counts of occupied cells below each corner."""
    return F.pad(occupied.to(torch.int32).cumsum(0).cumsum(1).cumsum(2), (1, 0, 1, 0, 1, 0))


def _box_count(table: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Occupied cells in the boxes [lo, hi) (lo, hi (3, ...) cell indices) from a
    summed-volume table padded with a leading zero plane on each axis."""
    total = torch.zeros(lo.shape[1:], dtype=table.dtype, device=table.device)
    for corner in range(8):
        pick = [hi[k] if corner >> k & 1 else lo[k] for k in range(3)]
        sign = -1 if (3 - bin(corner).count("1")) % 2 else 1
        total += sign * table[pick[0], pick[1], pick[2]]
    return total
