"""One data set made of several: a folder whose manifest names every clip of the parts,
each part linked in under its own name, so training reads them as one set without
copying a frame.

Identity and clip ids take the part's name as a prefix (two SynthTalk sets both have an
``id000``); each identity keeps its split, so held-out faces stay held out.
"""

from __future__ import annotations

import os
import re

from .errors import ManifestError
from .manifest import Manifest, load_manifest, write_manifest

_SHARED = ("fps", "sample_rate", "resolution")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _part_names(parts: list[str]) -> list[str]:
    names = [os.path.basename(os.path.normpath(p)) for p in parts]
    for part, name in zip(parts, names):
        if not _NAME.match(name):
            raise ManifestError(f"{part}: its folder name {name!r} cannot name a part (letters, digits, _ . -)")
    if len(set(names)) != len(names):
        raise ManifestError(f"the parts' folder names must differ, got {', '.join(names)}")
    return names


def merge_datasets(out, parts: list[str]) -> Manifest:
    """Write ``out``: a data set of every clip in ``parts`` (data-set folders that agree on
    fps, sample rate and resolution). ``out`` must not exist yet or be empty."""
    if len(parts) < 2:
        raise ManifestError("merging needs at least two data sets")
    names = _part_names(parts)
    manifests = [load_manifest(p) for p in parts]
    first = manifests[0]
    for part, m in zip(parts[1:], manifests[1:]):
        for key in _SHARED:
            if getattr(m, key) != getattr(first, key):
                raise ManifestError(
                    f"{part}: {key} is {getattr(m, key)}, {parts[0]} has {getattr(first, key)}; "
                    "only data sets that agree on fps, sample rate and resolution merge"
                )
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ManifestError(f"{out}: exists and is not an empty folder")

    identities, clips = [], []
    for name, m in zip(names, manifests):
        identities += [{**ident, "id": f"{name}_{ident['id']}"} for ident in m.identities]
        for clip in m.clips:
            linked = {key: f"{name}/{clip[key]}" for key in ("frames", "audio", "meta")}
            if clip.get("views"):
                linked["views"] = [f"{name}/{v}" for v in clip["views"]]
            clips.append({**clip, **linked, "id": f"{name}_{clip['id']}", "identity": f"{name}_{clip['identity']}"})
    merged = Manifest(
        fps=first.fps,
        sample_rate=first.sample_rate,
        resolution=first.resolution,
        identities=identities,
        clips=clips,
        source={
            "kind": "merged",
            "parts": [{"name": n, "path": m.root, "source": m.source} for n, m in zip(names, manifests)],
        },
    )
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    links = []
    try:
        for name, m in zip(names, manifests):
            links.append(os.path.join(out, name))
            os.symlink(m.root, links[-1], target_is_directory=True)
        write_manifest(out, merged)
    except BaseException:  # no half-made set left behind: a rerun would refuse the folder
        for link in links:
            if os.path.islink(link):
                os.unlink(link)
        if created:
            os.rmdir(out)
        raise
    merged.root = os.path.abspath(out)
    return merged
