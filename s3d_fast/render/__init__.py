"""``s3d-fast render``: one image + speech -> a lip-synced, free-view talking-head video.

cameras.py  per-frame camera-to-head sequences (static + free-view offset, orbit, clip poses)
source.py   the source image: aligned data-set frame (sidecar) or photo (face mesh, crop)
photo_geometry.py  a photo's own depth (face mesh, segmentation) for turned cameras
api.py      Renderer -> Identity -> frames, batch by batch, with per-stage timings
stream.py   frames while the speech arrives (Identity.stream), the grid fitted to a stream
speech.py   reading speech into per-frame mel windows; frame counts
limits.py   bounds on batch and output size; assets.py the bundled demo; stats.py timings
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
