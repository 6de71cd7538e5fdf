"""The real-time path of S3DNeRF (docs/design.md section 4): bake an occupancy grid of the
canonical head once per source, tighten it to one utterance, then march only occupied
cells and shade each ray until it is opaque."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .. import ops
from ..nn import OccupancyGrid
from .mouth import SPEECH_REACH, opening_centre, opening_ramp
from .rays import box_intersection, camera_rays, scaled_intrinsics
from .source import Source
from .superres import MOTION_CHANNELS

# Sample ranks along a ray at which the real-time path checks which rays are already
# opaque (see ``RealTimeRendering._shade_until_opaque``): a ray enters the dilated grid a few
# samples before the surface, so most rays are done after the first rounds.
SHADE_ROUNDS = (4, 8, 16)
# A kept photo's frames are marched only near where the speech can move the face, and a
# sixteenth of the image beyond it: super-resolution's convolutions read that far.
SHOWN_MARGIN = 16


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


class RealTimeRendering:
    """The real-time path, a part of :class:`S3DNeRF` (its encoders, field and super-resolution)."""

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
            [
                self.decoder.density(source.features.planes, x[:, i : i + chunk].contiguous())
                for i in range(0, x.shape[1], chunk)
            ],
            1,
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
        if baked.source.slots.shape[0] != 1:
            return baked
        return self.fit_to_probes(baked, tokens[self.audio_probes(tokens.shape[0], probes)], margin)

    @staticmethod
    def audio_probes(n_frames: int, probes: int = 16) -> torch.Tensor:
        """The frames of an utterance of ``n_frames`` whose tokens ``fit_to_audio`` reads:
        ``probes`` spread evenly from the first to the last, ascending."""
        return torch.linspace(0, n_frames - 1, min(probes, n_frames)).round().long().unique()

    @torch.no_grad()
    def fit_to_probes(self, baked: Baked, tokens: torch.Tensor, margin: int = 1) -> Baked:
        """``fit_to_audio`` given only the tokens (P, t, D) of its probe frames
        (``audio_probes``), so a streamed utterance need not be held whole."""
        cfg = self.cfg
        if baked.source.slots.shape[0] != 1:
            return baked
        res = cfg.bake_resolution
        cell = 2.0 / res
        solid = baked.solid[0, 0] > 0.5
        ticks = torch.arange(res + 1, device=tokens.device, dtype=tokens.dtype) * cell - 1
        corners = torch.stack(torch.meshgrid(ticks, ticks, ticks, indexing="ij"), -1).view(1, -1, 3)
        slots = self.regions.condition(baked.source.slots, tokens.unsqueeze(0))[0]
        encoded = self.deformation.encode(corners)  # the audio-free part, shared by every probe
        low = torch.full_like(corners[0], math.inf)
        high = torch.full_like(corners[0], -math.inf)
        for f in range(slots.shape[0]):
            offset = self.deformation.from_encoding(encoded, slots[f : f + 1])[0][0]
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
    def render_frames(
        self, baked: Baked, tokens: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, shade_rounds=SHADE_ROUNDS
    ) -> dict:
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
        turn = None
        if source.photo_points is not None:  # rendered at the source camera, then turned (``_finish``)
            turn = (c2w, K)
            c2w, K = source.camera[0].expand(Fn, 4, 4), source.camera[1].expand(Fn, 3, 3)
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
        rays = self._shown_rays(source, r)
        if rays is not None:
            o_in, d_in, near_in, far_in = o[:, rays], d[:, rays], near[:, rays], far[:, rays]
        else:
            o_in, d_in, near_in, far_in = o, d, near, far
        n_rays = o_in.shape[1]
        for f in range(Fn):
            ray_idx, t0, t1 = baked.grid.sampling(
                o_in[f].contiguous(),
                d_in[f].contiguous(),
                t_min=near_in[f].contiguous(),
                t_max=far_in[f].contiguous(),
                render_step_size=step,
                early_stop_eps=0.0,
                grid_indices=torch.zeros(n_rays, dtype=torch.long, device=o.device),
            )
            lap("marching")
            if ray_idx.numel() == 0:  # nothing occupied in view: background only
                continue
            shaded, sigma, values = self._shade_until_opaque(
                source, slots[f : f + 1], o_in[f], d_in[f], ray_idx, t0, t1, n_rays, lap, shade_rounds
            )
            colour, alpha, distance = ops.composite(
                sigma,
                values,
                ray_indices=ray_idx[shaded],
                n_rays=n_rays,
                t_starts=t0[shaded],
                t_ends=t1[shaded],
                early_stop_eps=cfg.early_stop_eps,
            )
            if rays is None:
                rendered[f], opacity[f], depth[f] = colour, alpha, distance
            else:
                rendered[f, rays], opacity[f, rays], depth[f, rays] = colour, alpha, distance
            lap("compositing")
        share = cavity_colour = None
        if cfg.cavity_opening:
            share = rendered[..., -1].reshape(Fn, 1, r, r)
            rendered = rendered[..., :-1]
        if self._interior_alone:
            cavity_colour = rendered[..., -3:].reshape(Fn, r, r, 3).permute(0, 3, 1, 2)
            rendered = rendered[..., :-3]
        out = self._finish(
            source,
            rendered.reshape(-1, C + MOTION_CHANNELS),
            opacity.view(-1, 1),
            1,
            Fn,
            o.new_zeros(()),
            (o, d, depth.view(Fn, -1)),
            share,
            turn,
            cavity_colour,
        )
        lap("super-resolution")
        result = {"rgb": out["rgb"][0], "score": out["score"][0], "opacity": out["opacity"][0], "timings": times}
        if share is not None:
            result["cavity"] = share.view(Fn, r, r)
        return result

    @torch.no_grad()
    def at_rest(self, baked: Baked, tokens: torch.Tensor) -> Baked:
        """The bake with ``Source.rest_share`` measured: a frame of each of ``tokens``
        ((Q, t, D), inputs that mean a closed mouth) rendered at the source camera; the rest
        is the widest opening any of them shows, so none of them opens the kept photo's
        mouth. Without the mouth's opening (``cavity_opening``) or a source camera, the
        bake unchanged."""
        source = baked.source
        if not self.cfg.cavity_opening or source.camera is None:
            return baked
        c2w, K = source.camera
        Q = tokens.shape[0]
        out = self.render_frames(baked, tokens, c2w[:1].expand(Q, 4, 4), K[:1].expand(Q, 3, 3))
        widest = out["cavity"].amax(0, keepdim=True)
        rested = dataclasses.replace(source, rest_share=widest[:, None].clone())
        return dataclasses.replace(baked, source=rested)

    @torch.no_grad()
    def register_mouth(self, baked: Baked, tokens: torch.Tensor) -> Baked:
        """A kept photo's bake with the model's mouth moved onto the photo's lips.

        The model does not always open its mouth where the photo's lips are (a face looking
        down, proportions no synthetic head has: 15-19 px of 256 above them).
        Frames of ``tokens`` (P, t, D), speech that opens the mouth, are rendered at the
        source camera; the centre of the opening beyond rest is compared with the photo's
        lips, and the source camera's principal point moves by the difference, so the
        field renders its mouth where the photo's is (the photo itself is seen from that
        same camera, so it does not move). Unchanged without a kept photo's lips and rest
        (``at_rest``, which must then be measured again), when nothing opens, or when the
        opening lies beyond the jaw's reach of the lips (it is not the mouth)."""
        source = baked.source
        if source.lips_centre is None or source.rest_share is None or source.photo_points is None:
            return baked  # only frames rendered at the source camera (``photo_points``) can move with it
        c2w, K = source.camera
        P = tokens.shape[0]
        # Marched only where a frame can show it (``_shown_rays``): an opening beyond is never shown.
        share = self.render_frames(baked, tokens, c2w[:1].expand(P, 4, 4), K[:1].expand(P, 3, 3))["cavity"]
        opened = opening_ramp(share - source.rest_share[0]).sum(0)
        centre = opening_centre(opened)
        if centre is None:
            return baked
        R = self.input_resolution
        shift = source.lips_centre[0] - centre * (R / opened.shape[-1])
        if float(shift.norm()) > SPEECH_REACH * R:
            return baked
        moved = K.clone()
        moved[:, :2, 2] += shift
        return dataclasses.replace(baked, source=dataclasses.replace(source, camera=(c2w, moved), mouth_shift=shift))

    def _shown_rays(self, source: Source, r: int) -> Optional[torch.Tensor]:
        """The rays whose pixels a kept photo can show (``Source.keep_photo``): those near
        where the speech can move the face, with a margin for super-resolution's
        convolutions; None (every ray) unless frames render at the source camera, where
        that region is (a photo with its own geometry)."""
        if source.speech_limit is None or source.photo_points is None:
            return None
        limit = F.interpolate(source.speech_limit, size=(r, r), mode="bilinear", align_corners=False)
        margin = max(1, r // SHOWN_MARGIN)
        near = F.max_pool2d(limit, 2 * margin + 1, stride=1, padding=margin)[0, 0] > 0
        return torch.nonzero(near.reshape(-1)).squeeze(1)

    @property
    def _shaded_channels(self) -> int:
        """What the real-time path composites per sample: feature, offset, score and, when
        it opens the mouth, the cavity's own colour (``model.interior_alone``) and its share last."""
        return (
            self.cfg.feature_channels + MOTION_CHANNELS + int(self.cfg.cavity_opening) + 3 * int(self._interior_alone)
        )

    @property
    def _interior_alone(self) -> bool:
        """The opening painted from the cavity's own colour (``model.interior_alone``; the
        config allows it only with the interior, and so with the opening)."""
        return self.interior is not None and self.cfg.interior_alone

    def _shade_until_opaque(self, source: Source, slots, o, d, ray_idx, t0, t1, n_rays: int, lap, rounds=SHADE_ROUNDS):
        """Deformation + decoder for one frame's marched samples, front to back in rounds
        of sample ranks along each ray; after each round, rays already opaque drop out.

        The grid is dilated by the largest offset, so a ray crosses several cells of
        margin in front of the surface and many behind it, where compositing's early
        stop would discard the work. A ray drops out only when the transmittance in front
        of its next sample is below ``early_stop_eps`` (with a margin for rounding), which
        is exactly the test compositing applies, so the image does not change.

        Returns (shaded (K,): the indices of the samples shaded, ascending), sigma (K,),
        values (K, C'): feature, offset, score and, with ``cavity_opening``, the cavity share.
        """
        cfg = self.cfg
        n = ray_idx.numel()
        counts = torch.bincount(ray_idx, minlength=n_rays)
        rank = torch.arange(n, device=ray_idx.device) - (torch.cumsum(counts, 0) - counts)[ray_idx]
        # Each sample's round, and each round's samples in order, found once: a round then
        # reads only its own samples, not every marched one.
        bounds = torch.tensor(list(rounds), device=ray_idx.device, dtype=rank.dtype)
        round_of = torch.bucketize(rank, bounds, right=True)
        by_round = torch.argsort(round_of, stable=True)
        per_round = torch.bincount(round_of, minlength=len(rounds) + 1)
        x_all = o[ray_idx] + d[ray_idx] * (0.5 * (t0 + t1))[:, None]
        # Optical depth at which transmittance reaches early_stop_eps, less a rounding margin.
        stop_depth = -math.log(cfg.early_stop_eps) * (1 + 1e-4) + 1e-4 if cfg.early_stop_eps > 0 else math.inf
        depth = t0.new_zeros(n_rays)
        shaded, sigmas, values = [], [], []
        for r, idx in enumerate(torch.split(by_round, per_round.tolist())):
            if r > 0:  # rays already opaque drop out
                idx = idx[depth[ray_idx[idx]] <= stop_depth]
            if idx.numel() == 0:
                continue
            x = x_all[idx].unsqueeze(0)
            offset, score, _, cavity = self.deformation(x, slots)
            lap("deformation")
            sigma, feat = self.decoder(source.features.planes, x + offset)
            feat, cavity_colour = self.blend_cavity(feat, cavity, x)
            lap("decoder")
            parts = [feat[0], offset[0] / cfg.max_offset, score[0, :, None]]
            if cavity_colour is not None:
                parts.append(cavity_colour[0])
            if cfg.cavity_opening:
                parts.append(cavity[0, :, None])
            shaded.append(idx)
            sigmas.append(sigma[0])
            values.append(torch.cat(parts, -1))
            depth.index_add_(0, ray_idx[idx], sigma[0] * (t1[idx] - t0[idx]))
        if not shaded:
            return ray_idx.new_zeros(0), t0.new_zeros(0), t0.new_zeros(0, self._shaded_channels)
        shaded, order = torch.sort(torch.cat(shaded))
        return shaded, torch.cat(sigmas)[order], torch.cat(values)[order]


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
