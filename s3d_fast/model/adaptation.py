"""Bake-time adaptation: a short descent on one source's own encoding (its tri-planes) so
the model redraws that source at its own camera. The trained weights do not change, so the
method stays one-shot; only what the encoder wrote for this one image is refined."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from .appearance import SourceFeatures
from .losses import resize
from .source import Source


@dataclass
class Adaptation:
    """What ``adapt_source`` did: steps taken, seconds, and its loss (the frame at the
    source camera against the source: L1 at the output plus L1 at the field's resolution,
    in 0-1 colour units) before and after."""

    steps: int
    seconds: float
    before: float
    after: float


@contextmanager
def frozen(module: nn.Module):
    """The module in eval mode, its parameters without gradients, for the duration (both
    restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    was_training = module.training
    module.eval().requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
        module.train(was_training)


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A copy usable in autograd (a source encoded under ``torch.inference_mode`` is not)."""
    return tensor.detach().clone()


def _as_drawn(source: Source) -> Source:
    """The source as the model alone draws it at its own camera: no kept photo, no turn,
    every tensor a plain copy."""
    features = SourceFeatures(
        [_plain(p) for p in source.features.planes],
        _plain(source.features.tokens),
        source.features.token_size,
        {k: _plain(v) for k, v in source.features.pyramid.items()},
    )
    camera = tuple(_plain(t) for t in source.camera)
    return dataclasses.replace(
        source,
        features=features,
        slots=_plain(source.slots),
        slot_attention=_plain(source.slot_attention),
        image=_plain(source.image),
        background=_plain(source.background),
        camera=camera,
        keep_out=None if source.keep_out is None else _plain(source.keep_out),
        keep_photo=False,
        photo_points=None,
        photo_anchor=None,
        frontal=None,
    )


def _front_plane_only(grad: torch.Tensor) -> torch.Tensor:
    """The gradient of planes (B, 3, H, W, C) on the xy plane alone, the one facing the camera."""
    grad = grad.clone()
    grad[:, 1:] = 0
    return grad


def adapt_source(
    model,
    source: Source,
    rest_tokens: torch.Tensor,
    steps: int,
    lr: float = 0.01,
    seconds: Optional[float] = None,
    conditioning: bool = False,
    front_only: Optional[bool] = None,
    on_step: Optional[Callable[[int, int], None]] = None,
) -> tuple[Source, Adaptation]:
    """``source`` with its tri-planes refined so the model's frame at the source camera,
    with ``rest_tokens`` (1, t, D) (silent speech), matches the source image.

    Up to ``steps`` steps of Adam (learning rate ``lr`` relative to each plane's spread),
    stopping early once ``seconds`` have passed. The loss is the training's photometric
    pair (L1 at the output and at the radiance field's resolution).
    ``front_only``: only the xy plane, the one facing the camera, changes; refining the two
    planes the source does not face also changes what other views see, and turned views
    lost the face (docs/experiments.md, "Adapting to the portrait at bake time"). Default:
    the xy plane alone, unless frames are only ever rendered at the source camera (a kept
    photo with its own geometry, ``Source.photo_points``, turned through that geometry).
    ``conditioning``: the pyramid that conditions super-resolution is refined too.
    Everything else of the source (its slots, the image super-resolution blends from, a
    kept photo's geometry) is unchanged. ``on_step(done, steps)`` is called after
    each step (a progress bar). One source at a time, with its camera."""
    if source.camera is None:
        raise ValueError("adapting a source needs its camera")
    if source.slots.shape[0] != 1:
        raise ValueError("adapt one source at a time")
    if front_only is None:
        front_only = source.photo_points is None
    # Outside inference mode: a source encoded under it (as rendering does) is copied here.
    with torch.inference_mode(False), torch.enable_grad(), frozen(model):
        drawn = _as_drawn(source)
        planes = [nn.Parameter(p) for p in drawn.features.planes]
        if front_only:
            for p in planes:
                p.register_hook(_front_plane_only)
        pyramid = {k: nn.Parameter(v) if conditioning else v for k, v in drawn.features.pyramid.items()}
        tuned = planes + ([*pyramid.values()] if conditioning else [])
        # Each tensor's step in proportion to its own spread: the scales differ by the encoder's layers.
        groups = [{"params": [p], "lr": lr * float(p.detach().std().clamp(min=1e-6))} for p in tuned]
        optimizer = torch.optim.Adam(groups, betas=(0.9, 0.99))
        features = dataclasses.replace(drawn.features, planes=planes, pyramid=pyramid)
        drawn = dataclasses.replace(drawn, features=features)
        c2w, K = drawn.camera
        target = drawn.image
        target_low = resize(target, model.cfg.nerf_resolution)
        tokens = _plain(rest_tokens)[None]
        start = time.perf_counter()
        losses = []
        for step in range(steps + 1):
            out = model.render(drawn, tokens, c2w[:, None], K, stratified=False)
            loss = (out["rgb"][:, 0] - target).abs().mean() + (out["rgb_low"][:, 0] - target_low).abs().mean()
            losses.append(float(loss.detach()))
            if step == steps or (seconds is not None and time.perf_counter() - start > seconds):
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step + 1, steps)
    features = dataclasses.replace(source.features, planes=[p.detach() for p in planes])
    if conditioning:
        features.pyramid = {k: v.detach() for k, v in pyramid.items()}
    result = dataclasses.replace(source, features=features)
    return result, Adaptation(len(losses) - 1, time.perf_counter() - start, losses[0], losses[-1])
