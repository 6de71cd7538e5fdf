"""The manifest format: round trip, schema versions, validation errors."""

import json
import os

import pytest

from s3d_fast.data.dataset import SCHEMA_VERSION, Manifest, load_manifest, write_manifest
from s3d_fast.data.errors import ManifestError, SchemaVersionError


def _manifest():
    return Manifest(
        fps=25,
        sample_rate=16000,
        resolution=64,
        identities=[{"id": "a", "split": "train"}, {"id": "b", "split": "heldout"}],
        clips=[
            {
                "id": "a_0",
                "identity": "a",
                "frames": "a_0/frames.mp4",
                "audio": "a_0/audio.wav",
                "meta": "a_0/meta.npz",
                "n_frames": 10,
                "split": "train",
                "views": ["a_0/view1.mp4"],
            },
            {
                "id": "b_0",
                "identity": "b",
                "frames": "b_0/frames.mp4",
                "audio": "b_0/audio.wav",
                "meta": "b_0/meta.npz",
                "n_frames": 5,
                "split": "heldout",
            },
        ],
        source={"kind": "test"},
    )


def _touch_files(root, m):
    for c in m.clips:
        for rel in [c["frames"], c["audio"], c["meta"], *c.get("views", [])]:
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            open(os.path.join(root, rel), "wb").close()


def test_round_trip(tmp_path):
    m = _manifest()
    _touch_files(tmp_path, m)
    file = write_manifest(tmp_path, m)
    assert os.path.basename(file) == "manifest.json" and os.listdir(tmp_path).count("manifest.json") == 1
    back = load_manifest(tmp_path)
    assert back.to_json() == m.to_json()
    assert json.load(open(file))["schema_version"] == SCHEMA_VERSION
    assert back.root == str(tmp_path)
    assert [c["id"] for c in back.clips_in("heldout")] == ["b_0"]
    assert back.path("a_0/meta.npz") == os.path.join(str(tmp_path), "a_0/meta.npz")


def _write_raw(tmp_path, data):
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    return tmp_path


def test_newer_and_unknown_schema(tmp_path):
    data = _manifest().to_json()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="newer"):
        load_manifest(_write_raw(tmp_path, data), check_files=False)
    data["schema_version"] = 0
    with pytest.raises(SchemaVersionError, match="unknown"):
        load_manifest(_write_raw(tmp_path, data), check_files=False)
    del data["schema_version"]
    with pytest.raises(SchemaVersionError, match="not an s3d-fast data set"):
        load_manifest(_write_raw(tmp_path, data), check_files=False)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.update(fps=0), "fps"),
        (lambda d: d["clips"][0].pop("audio"), "lacks audio"),
        (lambda d: d["clips"][0].update(identity="zz"), "unknown identity"),
        (lambda d: d["clips"][1].update(split="train"), "its identity is 'heldout'"),
        (lambda d: d["clips"][0].update(frames="../../etc/passwd"), "inside the data set"),
        (lambda d: d["clips"][1].update(id="a_0"), "listed twice"),
        (lambda d: d["identities"][0].update(split="test"), "split must be"),
        (lambda d: d["clips"][0].update(n_frames=0), "n_frames"),
    ],
)
def test_validation_errors(tmp_path, mutate, message):
    data = _manifest().to_json()
    mutate(data)
    with pytest.raises(ManifestError, match=message):
        load_manifest(_write_raw(tmp_path, data), check_files=False)


def test_missing_files_and_bad_json(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(tmp_path)
    write_manifest(tmp_path, _manifest())
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_writer_refuses_invalid(tmp_path):
    m = _manifest()
    m.clips[0]["split"] = "heldout"
    with pytest.raises(ManifestError):
        write_manifest(tmp_path, m)
    assert os.listdir(tmp_path) == []
