"""The data-set manifest (docs/design.md section 5a): one JSON file that every data set on disk carries.

```
{"schema_version": 1, "fps": 25, "sample_rate": 16000, "resolution": 256,
 "identities": [{"id": "id000", "split": "train", ...}],
 "clips": [{"id", "identity", "frames", "audio", "meta", "n_frames", "split",
            "views": [extra-view videos, optional]}],
 "source": {"kind": "synthtalk" | "video", ...free-form provenance...}}
```

Paths are relative to the manifest's folder. ``split`` is train | heldout and is a
property of the identity, so no held-out identity is ever trained on; the loader checks
that. A manifest from a newer (or unknown) schema is refused with a clear message rather
than half-read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..atomic import write_text
from .errors import ManifestError, SchemaVersionError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "heldout")
_CLIP_KEYS = ("id", "identity", "frames", "audio", "meta", "n_frames", "split")


@dataclass
class Manifest:
    fps: int
    sample_rate: int
    resolution: int
    identities: list[dict[str, Any]]
    clips: list[dict[str, Any]]
    source: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    root: Optional[str] = None  # folder the manifest was loaded from (not serialised)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "fps": self.fps,
            "sample_rate": self.sample_rate,
            "resolution": self.resolution,
            "identities": self.identities,
            "clips": self.clips,
            "source": self.source,
        }

    def path(self, relative: str) -> str:
        """Absolute path of a file named in the manifest."""
        if self.root is None:
            raise ManifestError("this manifest was not loaded from disk; it has no root folder")
        return os.path.join(self.root, relative)

    def clips_in(self, split: Optional[str]) -> list[dict[str, Any]]:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        return [c for c in self.clips if split is None or c["split"] == split]


def _fail(where: str, message: str):
    raise ManifestError(f"{where}: {message}")


def _check_relpath(where: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        _fail(where, f"expected a relative path, got {value!r}")
    if os.path.isabs(value) or ".." in value.replace("\\", "/").split("/"):
        _fail(where, f"path {value!r} must stay inside the data set folder")


def validate(data: Any, where: str = MANIFEST_NAME) -> Manifest:
    """Check a parsed manifest and return it as a :class:`Manifest`."""
    if not isinstance(data, dict):
        _fail(where, "the manifest must be a JSON object")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SchemaVersionError(f"{where}: no integer schema_version; this is not an s3d-fast data set")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: schema_version {version} is newer than this s3d-fast reads ({SCHEMA_VERSION}); upgrade s3d-fast"
        )
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(f"{where}: unknown schema_version {version} (this s3d-fast reads {SCHEMA_VERSION})")
    for key in ("fps", "sample_rate", "resolution"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            _fail(where, f"{key} must be a positive integer, got {value!r}")
    identities, clips = data.get("identities"), data.get("clips")
    if not isinstance(identities, list) or not isinstance(clips, list):
        _fail(where, "identities and clips must be lists")
    splits = {}
    for n, ident in enumerate(identities):
        if not isinstance(ident, dict) or not isinstance(ident.get("id"), str):
            _fail(where, f"identities[{n}] needs a string id")
        if not isinstance(ident.get("split"), str) or ident["split"] not in SPLITS:
            _fail(where, f"identity {ident['id']!r}: split must be one of {SPLITS}, got {ident.get('split')!r}")
        if ident["id"] in splits:
            _fail(where, f"identity {ident['id']!r} is listed twice")
        splits[ident["id"]] = ident["split"]
    seen = set()
    for n, clip in enumerate(clips):
        if not isinstance(clip, dict):
            _fail(where, f"clips[{n}] must be an object")
        missing = [k for k in _CLIP_KEYS if k not in clip]
        if missing:
            _fail(where, f"clips[{n}] lacks {', '.join(missing)}")
        for key in ("id", "identity", "split"):
            if not isinstance(clip[key], str):
                _fail(where, f"clips[{n}].{key} must be a string, got {clip[key]!r:.60}")
        cid = clip["id"]
        if cid in seen:
            _fail(where, f"clip {cid!r} is listed twice")
        seen.add(cid)
        if clip["identity"] not in splits:
            _fail(where, f"clip {cid!r} names unknown identity {clip['identity']!r}")
        if clip["split"] != splits[clip["identity"]]:
            _fail(where, f"clip {cid!r} is in split {clip['split']!r} but its identity is {splits[clip['identity']]!r}")
        if not isinstance(clip["n_frames"], int) or isinstance(clip["n_frames"], bool) or clip["n_frames"] <= 0:
            _fail(where, f"clip {cid!r}: n_frames must be a positive integer")
        for key in ("frames", "audio", "meta"):
            _check_relpath(f"{where}: clip {cid!r} {key}", clip[key])
        if not isinstance(clip.get("views", []), list):
            _fail(where, f"clip {cid!r}: views must be a list of paths")
        for v in clip.get("views", []):
            _check_relpath(f"{where}: clip {cid!r} views", v)
    source = data.get("source", {})
    if not isinstance(source, dict):
        _fail(where, "source must be an object")
    return Manifest(
        fps=data["fps"],
        sample_rate=data["sample_rate"],
        resolution=data["resolution"],
        identities=identities,
        clips=clips,
        source=source,
        schema_version=version,
    )


def _manifest_file(path) -> str:
    path = os.fspath(path)
    return os.path.join(path, MANIFEST_NAME) if os.path.isdir(path) else path


def load_manifest(path, check_files: bool = True) -> Manifest:
    """Load and validate ``manifest.json`` (``path`` is the file or its folder)."""
    file = _manifest_file(path)
    if not os.path.isfile(file):
        raise ManifestError(f"{file}: no manifest here; is this an s3d-fast data set folder?")
    try:
        with open(file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{file}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ManifestError(f"{file}: nested too deeply to be a manifest") from None
    except OSError as exc:
        raise ManifestError(f"{file}: cannot read ({exc.strerror or exc})") from None
    manifest = validate(data, where=file)
    manifest.root = os.path.dirname(os.path.abspath(file))
    if check_files:
        for clip in manifest.clips:
            for rel in [clip["frames"], clip["audio"], clip["meta"], *clip.get("views", [])]:
                if not os.path.isfile(manifest.path(rel)):
                    raise ManifestError(f"{file}: clip {clip['id']!r} names {rel!r}, which does not exist")
    return manifest


def write_manifest(path, manifest: Manifest) -> str:
    """Validate, then write ``manifest.json`` atomically (temp name + rename)."""
    data = manifest.to_json()
    validate(json.loads(json.dumps(data)), where="manifest to write")
    file = _manifest_file(path)
    write_text(file, json.dumps(data, indent=1) + "\n")
    return file
