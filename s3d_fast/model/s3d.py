"""The assembled S^3D-NeRF generator (docs/design.md section 4): source image + audio +
camera -> frame.

``prepare_source`` encodes an identity once (tri-planes, region slots, the pyramid that
conditions super-resolution); ``audio_tokens`` encodes a whole utterance once; ``render``
draws frames in the training style (stratified + importance samples); ``bake`` and
``render_frames`` are the real-time path (``realtime.py``: an occupancy grid of the
canonical head, then marching only occupied cells).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..config import ModelConfig, check_model_config
from .adaptation import adapt_source
from .appearance import AppearanceEncoder
from .audio import AudioEncoder
from .decoder import Decoder
from .deformation import DeformationField
from .interior import MouthInterior
from .mouth import (
    OPENING_FROM,
    SPEECH_REACH,
    face_mask,
    keep_photo_outside_speech,
    lips_centre,
    mouth_keep_out,
    open_mouth,
    opened_share,
    painted_region,
    show_opening,
)
from .photo_view import landing_shift, paint_into_photo, photo_from_camera, photo_in_view
from .rays import box_intersection, camera_rays, importance_edges, scaled_intrinsics, stratified_edges
from .realtime import RealTimeRendering
from .reproject import reproject_source
from .slots import RegionSlots
from .source import FrontalPhoto, Source
from .superres import MOTION_CHANNELS, SuperResolution

# Named regions for torch.profiler (free when no profiler runs): `s3d-fast train
# --profile-steps N` reports the share of a training step each one takes.
stage = torch.profiler.record_function


class S3DNeRF(RealTimeRendering, nn.Module):
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
        self.interior = MouthInterior(cfg) if cfg.mouth_interior else None

    # -- per identity / per utterance -------------------------------------------------
    def prepare_source(
        self, image, mask=None, c2w=None, K=None, keep_photo: bool = False, geometry=None, frontal=None
    ) -> Source:
        """image (B, 3, R, R) in [0, 1]; mask (B, R, R) labels or None (whole image is face).
        The encoder works in the image plane and the tri-planes it writes are in canonical
        head space by training. The source camera (c2w (B, 4, 4), K (B, 3, 3)), when
        given, lets rendering reproject the source into each frame's view for the
        super-resolution blend (``reproject.py``); training gives it when
        ``train.reproject_source`` is on. ``keep_photo``: frames show the source itself
        wherever the speech does not move the face (``Source.keep_photo``); it needs a model
        that renders the mouth's opening (``cavity_opening``) and changes nothing without.
        ``geometry``: (points (B, 3, g, g), anchor (B, 1, g, g)), the photo's own geometry
        (``Source.photo_points``); it needs the source camera. With it, frames are rendered
        at the source camera, where the model and the photo agree on where the face and the
        mouth are, and the finished frame is turned to each frame's camera through the
        photo's geometry, not the density the model learned from synthetic heads.
        ``frontal``: (c2w (B, 4, 4), K (B, 3, 3), plane (B, 4) or None), a camera facing a
        turned photo's head (with ``keep_photo`` and ``geometry``): the model's source is then
        the photo seen from there, frames are rendered there, where the model was trained,
        and what it paints is taken back into the photo (``Source.frontal``). With a
        ``plane`` (``photo_geometry.far_half_plane``) and labels, the far half of the face is
        seen there as its near half mirrored (``photo_view.photo_from_camera``)."""
        R = self.input_resolution
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[-2:] != (R, R):
            raise ValueError(f"source image must be (B, 3, {R}, {R}), got {tuple(image.shape)}")
        if frontal is not None and keep_photo and geometry is not None and c2w is not None and K is not None:
            return self._frontal_source(image, mask, geometry, frontal)
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
        keep_out = mouth_keep_out(mask, image, self.cfg.mouth_keep_out)
        points, anchor = (None, None) if geometry is None or camera is None else geometry
        limit = mouth_keep_out(mask, image, SPEECH_REACH) if keep_photo else None
        lips = lips_centre(mask, image) if keep_photo else None
        return Source(
            feats,
            slots,
            attn,
            image,
            bg,
            camera,
            keep_out,
            keep_photo=keep_photo,
            speech_limit=limit,
            lips_centre=lips,
            photo_points=points,
            photo_anchor=anchor,
        )

    def _frontal_source(self, image, mask, geometry, frontal) -> Source:
        """``prepare_source`` of a turned photo seen from the ``frontal`` camera (its labels,
        one channel each, move with it), with what takes the frames back into the photo."""
        points, anchor = geometry
        c2w, K, plane = frontal
        stacked, mirror = image, None
        if mask is not None:
            labels = F.one_hot(mask.long(), int(mask.max()) + 1).permute(0, 3, 1, 2).to(image.dtype)
            stacked = torch.cat([image, labels], 1)
            mirror = None if plane is None else (plane, (mask > 0)[:, None])
        seen = photo_from_camera(stacked, points, anchor, c2w, K, mirror=mirror)
        seen_mask = None if mask is None else seen[:, 3:].argmax(1)
        source = self.prepare_source(seen[:, :3].clamp(0, 1), seen_mask, c2w, K, keep_photo=True, geometry=geometry)
        shift = landing_shift(points, anchor, c2w, K, image.shape[-1], 1)
        limit = mouth_keep_out(mask, image, SPEECH_REACH)
        return dataclasses.replace(source, frontal=FrontalPhoto(image, limit, shift))

    def adapt(self, source: Source, rest_tokens: torch.Tensor, steps: int, **options):
        """``source`` refined at bake time so this model redraws it (``adaptation.adapt_source``):
        returns (the adapted source, what the adaptation did)."""
        return adapt_source(self, source, rest_tokens, steps, **options)

    def audio_tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (T, 80, 16) or (B, T, 80, 16) -> tokens (T, t, D) or (B, T, t, D)."""
        with stage("audio encoder"):
            if mel.dim() == 3:
                return self.audio(mel.unsqueeze(0))[0]
            return self.audio(mel)

    # -- the radiance field --------------------------------------------------------------
    def field(
        self, source: Source, slots: torch.Tensor, x: torch.Tensor, ray_frame: torch.Tensor, ray_source: torch.Tensor
    ):
        """x (A, n, 3) observed points along A rays; slots (F, S, D) audio-conditioned
        per frame; ray_frame / ray_source (A,) each ray's frame and source, sorted by
        source. Returns sigma (A, n), feature (A, n, C), offset (A, n, 3), score (A, n),
        the mouth-cavity share (A, n), or None without ``mouth_cavity``, and the cavity's own
        colour weighted by that share (A, n, 3), or None without ``model.interior_alone``."""
        with stage("deformation"):
            offset, score, _, cavity = self.deformation(x, slots, ray_frame)
        canonical = x + offset
        B = source.slots.shape[0]
        counts = torch.bincount(ray_source, minlength=B).tolist()
        sigmas, feats = [], []
        for b, part in enumerate(torch.split(canonical, counts)):
            planes = [p[b : b + 1] for p in source.features.planes]
            with stage("tri-planes + decoder"):
                sigma, feat = self.decoder(planes, part.reshape(1, -1, 3))
            sigmas.append(sigma.view(part.shape[:2]))
            feats.append(feat.view(*part.shape[:2], -1))
        feature, cavity_colour = self.blend_cavity(torch.cat(feats), cavity, x)
        return torch.cat(sigmas), feature, offset, score, cavity, cavity_colour

    def blend_cavity(self, feature: torch.Tensor, share, x: torch.Tensor):
        """The decoder's feature (..., C) at observed points x (..., 3) with the mouth
        cavity's ``share`` of it replaced (``Decoder.blend_cavity``), coloured by the
        mouth's interior where the model has one. Returns it, and with
        ``model.interior_alone`` the interior's colour weighted by the share (..., 3), to be
        composited apart from what lies in front of it (else None)."""
        colour = None if self.interior is None or share is None else self.interior(x)
        alone = share.unsqueeze(-1) * colour if colour is not None and self.cfg.interior_alone else None
        return self.decoder.blend_cavity(feature, share, colour), alone

    def render(
        self,
        source: Source,
        tokens: torch.Tensor,
        c2w: torch.Tensor,
        K: torch.Tensor,
        stratified: bool = True,
        ray_mask: Optional[torch.Tensor] = None,
    ) -> dict:
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
        turn = None
        if source.photo_points is not None:  # rendered at the source camera, then turned (``_finish``)
            turn = (c2w.reshape(B * T, 4, 4), K.repeat_interleave(T, 0))
            c2w, K = source.camera[0][:, None].expand(B, T, 4, 4), source.camera[1]
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
            w, _, _ = ops.render_weight_from_density(
                edges[:, :-1].contiguous(), edges[:, 1:].contiguous(), sigma_c.float()
            )
            edges = importance_edges(edges, w, cfg.n_fine, deterministic=not stratified)
        sigma, feat, offset, score, cavity, alone = self.field(source, slots, points(edges), ray_frame, ray_source)
        channels = [feat, offset / cfg.max_offset, score.unsqueeze(-1)]
        if alone is not None:  # the cavity's own colour, composited apart from what lies in front of it
            channels.append(alone)
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
        cavity_colour = None
        if alone is not None:
            cavity_colour = colors.new_zeros(B * T * R, 3).index_copy(0, rays, colors[:, -3:])
            cavity_colour = cavity_colour.view(B * T, r, r, 3).permute(0, 3, 1, 2)
            colors = colors[:, :-3]
        C = colors.shape[-1]
        full = colors.new_zeros(B * T * R, C).index_copy(0, rays, colors)
        full_opacity = opacity.new_zeros(B * T * R, 1).index_copy(0, rays, opacity)
        offset_sq = offset.square().sum(-1).mean() if offset.numel() else offset.new_zeros(())
        view = None
        if source.camera is not None:  # no source camera, nothing to reproject: no depth image
            full_depth = depth.new_zeros(B * T * R, 1).index_copy(0, rays, depth)
            view = (all_o.view(B * T, R, 3), all_d.view(B * T, R, 3), full_depth.view(B * T, R))
        share = None if cavity_image is None else cavity_image.view(B * T, 1, r, r)
        out = self._finish(source, full, full_opacity, B, T, offset_sq, view, share, turn, cavity_colour)
        if cavity_image is not None:
            out["cavity"] = cavity_image
        return out

    def _finish(
        self,
        source: Source,
        rendered,
        opacity,
        B: int,
        T: int,
        offset_sq,
        view=None,
        share=None,
        turn=None,
        cavity_colour=None,
    ) -> dict:
        """``view``: (origins, directions (B*T, r*r, 3), depth (B*T, r*r)) of the rendered
        rays, with which a source that knows its camera is reprojected into each frame.
        ``turn``: (c2w (B*T, 4, 4), K (B*T, 3, 3) at the input resolution) of the frames,
        when they were rendered at the source camera and are to be turned to theirs through
        the photo's own geometry.
        ``share`` (B*T, 1, r, r): the rendered cavity share, where ``cavity_opening`` opens
        the source's mouth. ``cavity_colour`` (B*T, 3, r, r): the cavity's colour weighted
        by its share (``model.interior_alone``), painted into the opening in place of the
        whole ray's colour."""
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
                warped = reproject_source(stacked, *source.camera, *view, alpha.view(B * T, -1), T)
                frame_images, keep_out = warped[:, :3], (None if keep_out is None else warped[:, 3:])
        elif keep_out is not None:
            keep_out = keep_out.repeat_interleave(T, 0)
        opening = self.cfg.cavity_opening and share is not None
        interior = None
        photo = frame_images if frame_images is not None else source.image.repeat_interleave(T, 0)
        if opening:
            with stage("open the mouth"):
                frame_images = open_mouth(photo, share)
        with stage("super-resolution"):
            rgb = self.superres(features, source.features.pyramid, source.image, T, frame_images, keep_out)
        Ro = rgb.shape[-1]
        if opening:
            # And in front of what super-resolution paints: trained with the opening only
            # in its conditioning, it learns to paint the source's lips back over it
            # (docs/experiments.md, "The cavity opening"). The opening shows the field's
            # own colour there, the mouth's interior, when the model has one.
            if self.interior is None:
                rgb = open_mouth(rgb, share)
            else:
                opened = opened_share(share.to(rgb.dtype), (Ro, Ro))
                seen = rgb_low if cavity_colour is None else cavity_colour / share.clamp(min=OPENING_FROM)
                # Channels first (the rendered image is laid out channels last): PyTorch's
                # upsampling of three channels is slower in that layout.
                colour = F.interpolate(seen.contiguous(), size=(Ro, Ro), mode="bilinear", align_corners=False)
                interior = self.interior.paint(colour, opened)
                # The frame's loss would teach the painter whatever the opening covers in the
                # target (lips, where the rendered opening runs ahead of it): it learns from the
                # target's own interior alone (``loss.interior_colour``).
                rgb = show_opening(rgb, opened, interior.detach() if self.training else interior)
        if source.keep_photo and share is not None and source.frontal is not None:
            with stage("keep the photo"):
                region = painted_region(share, source.rest_share, source.speech_limit, Ro, T)
                rgb = paint_into_photo(rgb, region, source.frontal, T)
        elif source.keep_photo and share is not None:
            with stage("keep the photo"):
                rgb = keep_photo_outside_speech(rgb, photo, share, source.rest_share, source.speech_limit, T)
        if turn is not None:
            with stage("turn the photo"):
                K = scaled_intrinsics(turn[1], self.input_resolution, Ro)
                rgb = photo_in_view(rgb, source.photo_points, source.photo_anchor, turn[0], K, T)
        out = {
            "rgb": rgb.view(B, T, 3, Ro, Ro),
            "rgb_low": rgb_low.view(B, T, 3, r, r),
            "opacity": alpha.view(B, T, r, r),
            "score": score.view(B, T, r, r),
            "offset_sq": offset_sq,
        }
        if interior is not None:
            out["interior"] = interior.view(B, T, 3, Ro, Ro)
        return out

    def forward(self, image, mask, tokens, c2w, K, stratified: bool = True, ray_mask=None, source_c2w=None) -> dict:
        """``source_c2w`` (B, 4, 4), the source's camera when known: it is then reprojected
        into each frame for super-resolution, as rendering does (``reproject.py``)."""
        return self.render(self.prepare_source(image, mask, source_c2w, K), tokens, c2w, K, stratified, ray_mask)
