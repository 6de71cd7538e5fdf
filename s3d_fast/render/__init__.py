"""``s3d-fast render``: one image + speech -> a lip-synced, free-view talking-head video.

cameras.py  per-frame camera-to-head sequences (static + free-view offset, orbit, clip poses)
source.py   the source image: aligned data-set frame (sidecar) or photo (face mesh, crop)
api.py      Renderer -> Identity -> frames, batch by batch, with per-stage timings
cli.py      the command; the mp4 with the speech muxed in

``Renderer`` and ``Identity`` load torch, so they are imported on first use.
"""

from __future__ import annotations

__all__ = ["Renderer", "Identity", "Speech", "RenderStats"]


def __getattr__(name):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
