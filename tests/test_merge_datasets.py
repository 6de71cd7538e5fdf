"""Several data sets merged into one: every clip readable through the links, ids kept apart,
splits kept, and data sets that cannot be read together refused."""

import json
import os
import shutil

import numpy as np
import pytest
from tool_loader import load_tool

from s3d_fast.data.dataset import TalkingHeadDataset, load_manifest
from s3d_fast.data.errors import ManifestError
from s3d_fast.data.merge import merge_datasets


@pytest.fixture
def parts(data, tmp_path):
    """Two copies of the tiny SynthTalk set, under different names."""
    paths = [tmp_path / "classic", tmp_path / "photo"]
    for path in paths:
        shutil.copytree(data, path)
    return [str(p) for p in paths]


def test_every_clip_of_the_parts_is_read_through_the_merged_set(parts, tmp_path):
    out = tmp_path / "both"
    merge_datasets(out, parts)
    merged = load_manifest(out)  # checks that every file it names exists
    originals = [load_manifest(p) for p in parts]
    assert len(merged.clips) == sum(len(m.clips) for m in originals)
    assert len(merged.identities) == sum(len(m.identities) for m in originals)
    first = originals[0].clips[0]
    clip = next(c for c in merged.clips if c["id"] == f"classic_{first['id']}")
    assert clip["identity"] == f"classic_{first['identity']}"
    assert clip["split"] == first["split"]
    assert len({c["id"] for c in merged.clips}) == len(merged.clips)

    for split in ("train", "heldout"):
        want = sum(len(m.clips_in(split)) for m in originals)
        assert len(merged.clips_in(split)) == want
    together = TalkingHeadDataset(out, "train", views=True)
    alone = TalkingHeadDataset(parts[1], "train", views=True)
    index = next(i for i, c in enumerate(together.clips) if c["id"] == f"photo_{alone.clips[0]['id']}")
    a, b = together.store.get(together.clips[index]), alone.store.get(alone.clips[0])
    np.testing.assert_array_equal(a["frames"], b["frames"])


def test_parts_that_disagree_on_resolution_are_refused(parts, tmp_path):
    manifest = os.path.join(parts[1], "manifest.json")
    data = json.load(open(manifest))
    data["resolution"] *= 2
    json.dump(data, open(manifest, "w"))
    with pytest.raises(ManifestError, match="resolution"):
        merge_datasets(tmp_path / "both", parts)
    assert not (tmp_path / "both").exists()


def test_a_folder_with_files_in_it_is_not_written_over(parts, tmp_path):
    out = tmp_path / "both"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ManifestError, match="not an empty folder"):
        merge_datasets(out, parts)
    assert os.listdir(out) == ["notes.txt"]


def test_a_failed_link_leaves_no_half_made_set(parts, tmp_path, monkeypatch):
    real_symlink, made = os.symlink, []

    def link_once(src, dst, target_is_directory=False):
        if made:
            raise OSError("no more links")
        made.append(dst)
        real_symlink(src, dst, target_is_directory=target_is_directory)

    monkeypatch.setattr(os, "symlink", link_once)
    with pytest.raises(OSError, match="no more links"):
        merge_datasets(tmp_path / "both", parts)
    assert made and not (tmp_path / "both").exists()


def test_parts_with_the_same_folder_name_are_refused(data, tmp_path):
    twins = [tmp_path / "a" / "ds", tmp_path / "b" / "ds"]
    for path in twins:
        shutil.copytree(data, path)
    with pytest.raises(ManifestError, match="must differ"):
        merge_datasets(tmp_path / "both", [str(p) for p in twins])


def test_the_tool_says_what_it_wrote_and_fails_in_one_line(parts, tmp_path, capsys):
    tool = load_tool("merge_datasets")
    assert tool.main([str(tmp_path / "both"), *parts]) == 0
    assert "identities" in capsys.readouterr().out
    assert tool.main([str(tmp_path / "both"), *parts]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
