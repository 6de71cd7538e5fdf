"""Baked portraits, cached by the content of the photo: baked once (face found, cropped and
aligned as ``s3d-fast render --image`` does, then the reference grid fitted, so that "play"
waits for neither), kept up to ``max_portraits``, the least recently used evicted."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..render import api, source, stream
from ..render.errors import ImageLimitError, NoFaceError, SourceImageError
from .errors import LimitError, NotFound, ServeError
from .limits import Limits

DEMO_ID = "demo"
# stage -> share of the bake done when it starts (what the page's progress bar shows). The
# adaptation, when the server adapts, is most of the bake's time (about 25 s on 2 cores).
STAGES = {
    "queued": 0.0,
    "reading the image": 0.05,
    "finding the face": 0.1,
    "adapting to the portrait": 0.15,
    "baking": 0.75,
    "fitting the occupancy grid": 0.8,
    "rendering the first frame": 0.9,
    "ready": 1.0,
}


@dataclass
class Portrait:
    id: str
    name: str
    stage: str = "queued"
    error: Optional[str] = None
    identity: object = None
    rest: Optional[np.ndarray] = None  # the first frame of silence from the source camera (uint8 H, W, 3)
    kind: str = ""
    created: float = field(default_factory=time.time)
    bake_seconds: float = 0.0
    # (stage, 0-1) how far into a stage that reports its steps the bake is; one tuple so a
    # reader on another thread never pairs a stage with another stage's share
    stage_done: tuple = ("", 0.0)
    ready_event: threading.Event = field(default_factory=threading.Event)

    @property
    def status(self) -> str:
        return "error" if self.error else ("ready" if self.stage == "ready" else "baking")

    @property
    def progress(self) -> float:
        """The share of the bake done: the current stage's start, and as far into it as is known."""
        shares = list(STAGES.values())
        stage = self.stage
        measured, done = self.stage_done
        start = STAGES.get(stage, 0.0)
        end = next((share for share in shares if share > start), 1.0)
        return start + (done if measured == stage else 0.0) * (end - start)

    def describe(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "error": self.error,
            "kind": self.kind,
            "bake_seconds": round(self.bake_seconds, 3),
        }


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """An uploaded image as uint8 (H, W, 3), its size checked before it is decoded."""
    if not data:
        raise ServeError("the portrait upload is empty")
    try:
        return source.decode_image(io.BytesIO(data), limits.max_image_pixels, "the portrait")
    except ImageLimitError as exc:
        raise LimitError(str(exc)) from None
    except SourceImageError as exc:
        raise ServeError(f"{exc} (not an image this server can read)", 415) from None


def rest_frame(identity, pose=None) -> np.ndarray:
    """The identity's first frame of silence from ``pose`` (default its source camera)."""
    silence = np.zeros(api.audio_mod.SAMPLE_RATE // 10, np.float32)
    frames = identity.stream([silence], pose=pose)
    return next(iter(frames)).image


class PortraitCache:
    """Portraits by id (the SHA-256 of the photo's bytes, or ``demo``), baked one at a time
    on a worker thread."""

    def __init__(self, renderer, limits: Limits, adapt_steps: int = 0):
        self.renderer, self.limits, self.adapt_steps = renderer, limits, adapt_steps
        self._entries: OrderedDict[str, Portrait] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bake")

    def add_upload(self, data: bytes, name: str) -> Portrait:
        if len(data) > self.limits.max_upload_bytes:
            raise LimitError(f"the portrait is {len(data):,} bytes, over the {self.limits.max_upload_bytes:,} limit")
        pixels = decode_image(data, self.limits)
        key = hashlib.sha256(data).hexdigest()[:32]
        return self._add(key, _display_name(name), pixels)

    def add_demo(self) -> Portrait:
        return self._add(DEMO_ID, "demo portrait", api.DEMO_IMAGE)

    def _add(self, key: str, name: str, image) -> Portrait:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.error is None:
                self._entries.move_to_end(key)
                return entry
            entry = self._entries[key] = Portrait(key, name)
            self._evict()
        self._worker.submit(self._bake, entry, image)
        return entry

    def _bake(self, entry: Portrait, image) -> None:
        start = time.perf_counter()
        try:
            # A path (the bundled demo) or an uploaded photo's pixels: render --image's path either way.
            entry.stage = "reading the image" if isinstance(image, str) else "finding the face"
            source = self.renderer.source(image)
            entry.kind = source.kind
            entry.stage = "adapting to the portrait" if self.adapt_steps else "baking"
            identity = self.renderer.bake(
                source, adapt_steps=self.adapt_steps, on_adapt_step=lambda done, steps: _adapted(entry, done, steps)
            )
            entry.stage = "fitting the occupancy grid"
            stream.reference_grid(identity)
            entry.stage = "rendering the first frame"
            entry.rest = rest_frame(identity)
            entry.identity = identity
            entry.bake_seconds = time.perf_counter() - start
            entry.stage = "ready"
        except NoFaceError:
            entry.error = "no face found in the portrait: upload a photo showing one face, seen from the front"
        except SourceImageError as exc:
            entry.error = f"the portrait cannot be used: {exc}"
        except Exception as exc:  # shown on the page; the server keeps serving
            entry.error = f"baking the portrait failed: {type(exc).__name__}: {exc}"
        finally:
            entry.ready_event.set()

    def _evict(self) -> None:
        while len(self._entries) > self.limits.max_portraits:
            oldest = next(iter(self._entries))
            if self._entries[oldest].status == "baking" and len(self._entries) <= 2 * self.limits.max_portraits:
                self._entries.move_to_end(oldest)  # a bake in progress is evicted last
                if all(e.status == "baking" for e in self._entries.values()):
                    break
                continue
            del self._entries[oldest]

    def get(self, key: str) -> Portrait:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                raise NotFound(f"no portrait {key!r} on this server (evicted or never uploaded); upload it again")
            self._entries.move_to_end(key)
            return entry

    def ready(self, key: str) -> Portrait:
        entry = self.get(key)
        if entry.error:
            raise ServeError(entry.error, 422)
        if entry.status != "ready":
            raise ServeError(f"the portrait is still baking ({entry.stage}); wait for it to be ready", 409)
        return entry

    def wait(self, key: str, timeout: float) -> Portrait:
        entry = self.get(key)
        entry.ready_event.wait(timeout)
        return self.ready(key)

    def list(self) -> list[dict]:
        with self._lock:
            return [e.describe() for e in reversed(self._entries.values())]

    def delete(self, key: str) -> None:
        with self._lock:
            if self._entries.pop(key, None) is None:
                raise NotFound(f"no portrait {key!r} on this server")

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def _adapted(entry: Portrait, done: int, steps: int) -> None:
    """The adaptation's progress onto the page: its share of the stage, then on to the bake."""
    entry.stage_done = (entry.stage, done / steps)
    if done == steps:
        entry.stage = "baking"


def _display_name(name: Optional[str]) -> str:
    """The upload's name for display only (never a path): printable, at most 80 characters."""
    name = "".join(c for c in (name or "portrait") if c.isprintable())[:80]
    return name or "portrait"
