"""Every bad input to a command, one table: each row is a command line built around one
damaged or hostile input, run as its own ``python -m s3d_fast.cli`` process. Each must
exit non-zero with one line on stderr that names the problem (no traceback), and leave
its folder exactly as it found it: no partial output, no temporary file. Rows marked
``memory`` run under a 2 GB address-space limit, which a valid render fits in
(test_valid_render_fits_the_memory_limit), so a hostile file cannot make a command
allocate more than a valid one. docs/reliability-commands.md states the counts per
command; test_the_documented_counts_match_the_table holds it to them."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from model_helpers import TINY_OVERRIDES, make_tiny_synthtalk
from PIL import Image
from render_fixtures import write_dataset_frame, write_speech

from s3d_fast.config import config_to_dict, small
from s3d_fast.config.overrides import apply_overrides
from s3d_fast.render import api

MEMORY_LIMIT = 2 * 2**30
DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability-commands.md"


def run_cli(argv, memory: bool = False, cwd=None, timeout: int = 120) -> subprocess.CompletedProcess:
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "s3d_fast.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        preexec_fn=limit if memory else None,
    )


# ----------------------------------------------------------------- shared inputs


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The tiny SynthTalk set (64^2) the training rows damage copies of."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    make_tiny_synthtalk(root)
    return root


@dataclass
class Inputs:
    dir: Path  # this row's folder: everything it builds, and every output it names
    data: Path  # the tiny data set (shared, never damaged in place)

    def file(self, name: str, content: bytes = b"") -> Path:
        path = self.dir / name
        path.write_bytes(content)
        return path

    def data_copy(self) -> Path:
        copy = self.dir / "data"
        shutil.copytree(self.data, copy)
        return copy

    def render(self, *extra, image=None, audio=None, checkpoint=None, out=None) -> list:
        if image is None:
            image, _, _ = write_dataset_frame(self.dir / "face.png", size=64)
        return [
            "render",
            "--image",
            image,
            "--audio",
            audio or api.DEMO_SPEECH,
            "--checkpoint",
            checkpoint or api.DEMO_CHECKPOINT,
            "--out",
            out or self.dir / "out.mp4",
            "--device",
            "cpu",
            "--quiet",
            *extra,
        ]

    def train(self, *extra, data=None, out=None, tiny=True, stage_one=False) -> list:
        """``tiny``: the tiny model; ``stage_one``: keep the lip-sync stage (else skipped)."""
        overrides = (TINY_OVERRIDES if tiny else []) + ([] if stage_one else ["train.sync_steps=0", "loss.sync=0"])
        return [
            "train",
            "--data",
            data or self.data,
            "--out",
            out or self.dir / "run",
            "--device",
            "cpu",
            "--quiet",
            *[a for o in overrides for a in ("--set", o)],
            *extra,
        ]

    def serve(self, *extra) -> list:
        return ["serve", "--port", "0", "--device", "cpu", *extra]

    def eval(self, *extra, out=None) -> list:
        return (
            ["eval", "--checkpoint", api.DEMO_CHECKPOINT, "--data", self.data, "--device", "cpu", "--quiet"]
            + (["--out", out] if out is not None else [])
            + list(extra)
        )


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none (what a decompression
    bomb looks like to a reader before it decodes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def npz_claiming(name: str, shape: tuple) -> bytes:
    """An .npz whose one entry's header claims a ``shape`` float64 array over 16 bytes."""
    import io

    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"descr": "<f8", "fortran_order": False, "shape": shape})
    npy.write(b"\0" * 16)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(f"{name}.npy", npy.getvalue())
    return out.getvalue()


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def damaged_checkpoint(inp: Inputs, damage: Callable[[Path], None]) -> Path:
    ckpt = inp.dir / "ckpt"
    shutil.copytree(api.DEMO_CHECKPOINT, ckpt)
    damage(ckpt)
    return ckpt


def safetensors_claiming(path: Path) -> None:
    """A header that says the file holds a 40 GB tensor (it holds 16 bytes)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 40 * 10**9]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 16)


def absurd_model(ckpt: Path) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"]["model"]["encoder_width"] = 10**6
    (ckpt / "config.json").write_text(json.dumps(meta))


def sidecar_with(inp: Inputs, **arrays) -> Path:
    image, _, _ = write_dataset_frame(inp.dir / "face.png", size=64)
    with np.load(inp.dir / "face.npz") as z:
        data = {k: z[k] for k in z.files}
    data.update(arrays)
    np.savez(inp.dir / "face.npz", **data)
    return image


def unwritable_folder(inp: Inputs) -> Path:
    """A folder no file can be created in: read-only bits, or for root (whom permission
    bits do not stop) a sysfs folder."""
    if os.geteuid() == 0:
        return Path("/sys/kernel")
    folder = inp.dir / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def manifest_with(inp: Inputs, edit: Callable[[dict], None]) -> Path:
    data = inp.data_copy()
    manifest = json.loads((data / "manifest.json").read_text())
    edit(manifest)
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data


def killed_run(inp: Inputs, syncnet: bytes, config_text=None) -> Path:
    """A run folder as a run killed after its lip-sync stage leaves it (no generator
    checkpoint yet), its expert's weights replaced by ``syncnet``."""
    run = inp.dir / "run"
    run.mkdir()
    cfg = apply_overrides(small(), TINY_OVERRIDES + ["train.sync_steps=2", "train.steps=2"])
    (run / "config.json").write_text(config_text or json.dumps({"config": config_to_dict(cfg)}))
    (run / "syncnet.safetensors").write_bytes(syncnet)
    (run / "metrics.csv").write_text("step,stage,wall_time,sync_loss\n1,sync,0.5,0.69\n2,sync,1.0,0.68\n")
    (run / "curves.png").write_bytes(b"")
    return run


# ----------------------------------------------------------------------- the table


@dataclass
class Case:
    command: str
    name: str
    build: Callable[[Inputs], list]  # the argv, after building the row's inputs in Inputs.dir
    expect: str  # a fragment of the one-line error
    memory: bool = False  # run under MEMORY_LIMIT


CASES = [
    # render: the output
    Case("render", "out is a character device", lambda i: i.render(out="/dev/null"), "is a character device"),
    Case(
        "render",
        "out is a FIFO",
        lambda i: (os.mkfifo(i.dir / "fifo.mp4"), i.render(out=i.dir / "fifo.mp4"))[1],
        "is a FIFO",
    ),
    Case(
        "render",
        "out is a symlink",
        lambda i: (os.symlink(i.file("real.mp4"), i.dir / "link.mp4"), i.render(out=i.dir / "link.mp4"))[1],
        "symbolic link",
    ),
    Case("render", "out is a folder", lambda i: i.render(out=i.dir), "is a folder"),
    Case(
        "render", "out in an unwritable folder", lambda i: i.render(out=unwritable_folder(i) / "o.mp4"), "cannot write"
    ),
    Case(
        "render",
        "batch without bound",
        lambda i: i.render("--batch", "100000"),
        "--batch must be an integer from 1 to 64",
    ),
    Case("render", "negative adaptation", lambda i: i.render("--adapt-steps", "-1"), "--adapt-steps must be 0 or more"),
    # render: which face
    Case("render", "a photo without a face", lambda i: i.render(image=_grey_photo(i)), "no face found in"),
    Case("render", "face counted from 0", lambda i: i.render("--face", "0", image=_two_people(i)), "counts from 1"),
    Case("render", "face beyond those found", lambda i: i.render("--face", "3", image=_two_people(i)), "has 2 faces"),
    # render: the image
    Case(
        "render",
        "image claims 9000x9000",
        lambda i: i.render(image=i.file("big.png", png_header(9000, 9000))),
        "scale it down",
        memory=True,
    ),
    Case(
        "render",
        "decompression bomb",
        lambda i: i.render(image=i.file("bomb.png", png_header(100_000, 100_000))),
        "decompression bomb",
        memory=True,
    ),
    Case(
        "render",
        "truncated image",
        lambda i: i.render(image=truncated(Path(write_dataset_frame(i.dir / "t.png")[0]))),
        "cannot read image",
    ),
    Case("render", "not an image", lambda i: i.render(image=i.file("x.png", b"GIF89a nonsense")), "cannot read image"),
    Case("render", "truncated sidecar", lambda i: i.render(image=_truncated_sidecar(i)), "camera sidecar"),
    Case(
        "render",
        "sidecar header claims 80 GB",
        lambda i: i.render(image=_sidecar_file(i, npz_claiming("c2w", (100_000, 100_000)))),
        "claims",
        memory=True,
    ),
    Case(
        "render",
        "sidecar K = 0",
        lambda i: i.render(image=sidecar_with(i, K=np.zeros((3, 3), np.float32))),
        "'K' focal lengths",
    ),
    Case(
        "render",
        "sidecar K absurd",
        lambda i: i.render(image=sidecar_with(i, K=np.diag([1e12, 1e12, 1.0]).astype(np.float32))),
        "'K' focal lengths",
    ),
    Case(
        "render",
        "sidecar c2w not rigid",
        lambda i: i.render(image=sidecar_with(i, c2w=np.eye(4, dtype=np.float32) * 3)),
        "not rigid",
    ),
    Case(
        "render",
        "sidecar K NaN",
        lambda i: i.render(image=sidecar_with(i, K=np.full((3, 3), np.nan, np.float32))),
        "finite",
    ),
    # render: speech, poses, checkpoint
    Case("render", "audio not audio", lambda i: i.render(audio=i.file("a.wav", b"RIFF....WAVEnonsense")), "a.wav"),
    Case(
        "render",
        "truncated pose file",
        lambda i: i.render("--pose-from", truncated(i.file("m.npz", _valid_npz()))),
        "cannot read the pose file",
    ),
    Case(
        "render",
        "safetensors header claims 40 GB",
        lambda i: i.render(checkpoint=damaged_checkpoint(i, lambda c: safetensors_claiming(c / "model.safetensors"))),
        "is corrupt",
        memory=True,
    ),
    Case(
        "render",
        "safetensors header length 2^60",
        lambda i: i.render(
            checkpoint=damaged_checkpoint(
                i, lambda c: (c / "model.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
            )
        ),
        "is corrupt",
        memory=True,
    ),
    Case(
        "render",
        "checkpoint config nested 100000 deep",
        lambda i: i.render(checkpoint=damaged_checkpoint(i, lambda c: (c / "config.json").write_text(DEEP_JSON))),
        "nested too deeply",
    ),
    Case(
        "render",
        "checkpoint with absurd sizes",
        lambda i: i.render(checkpoint=damaged_checkpoint(i, absurd_model)),
        "model.encoder_width",
        memory=True,
    ),
    Case(
        "render",
        "checkpoint weights renamed pickle",
        lambda i: i.render(
            checkpoint=damaged_checkpoint(i, lambda c: (c / "model.safetensors").write_bytes(b"\x80\x04\x95pickle"))
        ),
        "is corrupt",
    ),
    # synth
    Case(
        "synth",
        "seconds nan",
        lambda i: ["synth", "--quiet", "--out", i.dir / "d", "--seconds", "nan"],
        "--seconds must be",
    ),
    Case(
        "synth",
        "seconds inf",
        lambda i: ["synth", "--quiet", "--out", i.dir / "d", "--seconds", "inf"],
        "--seconds must be",
    ),
    Case(
        "synth",
        "seconds 1e6",
        lambda i: ["synth", "--quiet", "--out", i.dir / "d", "--seconds", "1e6"],
        "--seconds must be from",
    ),
    Case(
        "synth",
        "identities 1e8",
        lambda i: ["synth", "--quiet", "--out", i.dir / "d", "--identities", "100000000"],
        "--identities must be from 1 to",
    ),
    Case(
        "synth",
        "a set too large",
        lambda i: [
            "synth",
            "--quiet",
            "--out",
            i.dir / "d",
            "--identities",
            "1000",
            "--clips",
            "100",
            "--seconds",
            "60",
        ],
        "images",
    ),
    Case("synth", "size odd", lambda i: ["synth", "--quiet", "--out", i.dir / "d", "--size", "65"], "--size must be"),
    Case("synth", "out is a file", lambda i: ["synth", "--quiet", "--out", i.file("d")], "not a folder"),
    Case(
        "synth",
        "out in an unwritable folder",
        lambda i: ["synth", "--quiet", "--out", unwritable_folder(i) / "d"],
        "cannot write",
    ),
    Case(
        "synth",
        "contact sheet is a FIFO",
        lambda i: (
            os.mkfifo(i.dir / "s.png"),
            ["synth", "--quiet", "--out", i.dir / "d", "--contact-sheet", i.dir / "s.png"],
        )[1],
        "is a FIFO",
    ),
    # preprocess
    Case(
        "preprocess",
        "smooth nan",
        lambda i: ["preprocess", "--quiet", i.file("v.mp4"), "--out", i.dir / "d", "--smooth", "nan"],
        "--smooth must be",
    ),
    Case(
        "preprocess",
        "out is a file",
        lambda i: ["preprocess", "--quiet", i.file("v.mp4"), "--out", i.file("d")],
        "not a folder",
    ),
    Case(
        "preprocess",
        "out in an unwritable folder",
        lambda i: ["preprocess", "--quiet", i.file("v.mp4"), "--out", unwritable_folder(i) / "d"],
        "cannot write",
    ),
    Case(
        "preprocess",
        "no such video",
        lambda i: ["preprocess", "--quiet", i.dir / "none.mp4", "--out", i.dir / "d"],
        "no such video",
    ),
    Case(
        "preprocess",
        "video is not a video",
        lambda i: ["preprocess", "--quiet", i.file("v.mp4", b"\0" * 4096), "--out", i.dir / "d"],
        "v.mp4",
    ),
    Case(
        "preprocess",
        "truncated meta.npz of a finished clip",
        lambda i: ["preprocess", "--quiet", i.file("v.mp4"), "--out", _clip_with_truncated_meta(i)],
        "cannot read the clip's meta.npz",
    ),
    # train
    Case("train", "data set at another resolution", lambda i: i.train(tiny=False), "model.input_resolution"),
    Case("train", "steps -5", lambda i: i.train("--steps", "-5"), "train.steps must be"),
    Case(
        "train",
        "checkpoint_every 0",
        lambda i: i.train("--set", "train.checkpoint_every=0"),
        "train.checkpoint_every must be",
    ),
    Case("train", "batch_size 0", lambda i: i.train("--set", "train.batch_size=0"), "train.batch_size must be"),
    Case("train", "lr nan", lambda i: i.train("--set", "train.lr=nan"), "train.lr must be"),
    Case("train", "out is a file", lambda i: i.train(out=i.file("run")), "not a folder"),
    Case("train", "out in an unwritable folder", lambda i: i.train(out=unwritable_folder(i) / "run"), "cannot write"),
    Case(
        "train",
        "manifest has a list for a clip id",
        lambda i: i.train(data=manifest_with(i, lambda m: m["clips"][0].update(id=["x"]))),
        "clips[0].id must be a string",
    ),
    Case("train", "manifest nested 100000 deep", lambda i: i.train(data=_deep_manifest(i)), "nested too deeply"),
    Case(
        "train",
        "truncated meta.npz",
        lambda i: i.train(data=_data_with_truncated_meta(i)),
        "cannot read the clip's meta.npz",
    ),
    Case(
        "train",
        "unknown module to train",
        lambda i: i.train("--steps", "2", "--set", "train.train_only=bogus"),
        "no module 'bogus'",
    ),
    Case(
        "train",
        "resume: run config nested deep",
        lambda i: i.train("--resume", out=killed_run(i, b"", DEEP_JSON), stage_one=True),
        "is not a run config",
    ),
    Case(
        "train",
        "resume: a lip-sync expert whose config asks for 10^9 channels",
        lambda i: i.train("--resume", out=killed_run(i, _absurd_syncnet(i).read_bytes()), stage_one=True),
        "channel counts and embed_dim must be integers from 1 to 1024",
        memory=True,
    ),
    Case(
        "train",
        "resume: corrupt syncnet.safetensors",
        lambda i: i.train("--resume", out=killed_run(i, b"\0" * 64), stage_one=True),
        "delete it to train the lip-sync expert again",
    ),
    Case(
        "train",
        "init: a checkpoint whose config.json is nested deep",
        lambda i: i.train("--init", damaged_checkpoint(i, lambda c: (c / "config.json").write_text(DEEP_JSON))),
        "--init:",
    ),
    Case(
        "train",
        "init: weights that do not fit the model asked for",
        lambda i: i.train("--steps", "2", "--init", api.DEMO_CHECKPOINT),  # the demo's weights, the tiny sizes
        "do not fit",
    ),
    # eval
    Case("eval", "out is a file", lambda i: i.eval(out=i.file("e")), "not a folder"),
    Case("eval", "out in an unwritable folder", lambda i: i.eval(out=unwritable_folder(i) / "e"), "cannot write"),
    Case(
        "eval",
        "batch without bound",
        lambda i: i.eval("--batch", "100000", out=i.dir / "e"),
        "--batch must be an integer from 1 to 64",
    ),
    Case(
        "eval", "batch 0", lambda i: i.eval("--batch", "0", out=i.dir / "e"), "--batch must be an integer from 1 to 64"
    ),
    Case(
        "eval",
        "negative adaptation",
        lambda i: i.eval("--adapt-steps", "-1", out=i.dir / "e"),
        "--adapt-steps must be 0 or more",
    ),
    Case(
        "eval",
        "manifest has a list for an identity",
        lambda i: [
            "eval",
            "--checkpoint",
            api.DEMO_CHECKPOINT,
            "--data",
            manifest_with(i, lambda m: m["clips"][0].update(identity=[1])),
            "--out",
            i.dir / "e",
            "--device",
            "cpu",
        ],
        "clips[0].identity must be a string",
    ),
    Case(
        "eval",
        "checkpoint config nested deep",
        lambda i: [
            "eval",
            "--checkpoint",
            damaged_checkpoint(i, lambda c: (c / "config.json").write_text(DEEP_JSON)),
            "--data",
            i.data,
            "--out",
            i.dir / "e",
            "--device",
            "cpu",
        ],
        "nested too deeply",
    ),
    # serve: each refused before a socket is bound, so a row that passed would hang, not serve
    Case("serve", "negative adaptation", lambda i: i.serve("--adapt-steps", "-1"), "--adapt-steps must be 0 or more"),
    Case("serve", "port beyond 65535", lambda i: i.serve("--port", "70000"), "--port must be from 0 to 65535"),
    Case("serve", "no viewers", lambda i: i.serve("--max-sessions", "0"), "--max-sessions must be at least 1"),
    Case(
        "serve", "upload limit NaN", lambda i: i.serve("--max-upload-mb", "nan"), "--max-upload-mb must be a positive"
    ),
    Case(
        "serve", "upload limit inf", lambda i: i.serve("--max-upload-mb", "inf"), "--max-upload-mb must be a positive"
    ),
    Case(
        "serve",
        "no speech allowed",
        lambda i: i.serve("--max-speech-seconds", "0"),
        "--max-speech-seconds must be a positive number",
    ),
    Case("serve", "token too short", lambda i: i.serve("--token", "short"), "--token must be at least 8 characters"),
    Case("serve", "certificate without key", lambda i: i.serve("--tls-cert", i.file("c.pem")), "together"),
    Case(
        "serve",
        "certificate missing",
        lambda i: i.serve("--tls-cert", i.dir / "none.pem", "--tls-key", i.dir / "none.key"),
        "none.pem: no such file",
    ),
]


def _absurd_syncnet(inp: Inputs) -> Path:
    from safetensors.torch import save_file

    from s3d_fast.model.syncnet import FORMAT_VERSION, SyncNetConfig

    config = SyncNetConfig().to_json()
    config["face_channels"] = [10**9, 10**9]
    path = inp.dir / "syncnet.safetensors"
    metadata = {"format": "s3d_fast.syncnet", "format_version": str(FORMAT_VERSION), "config": json.dumps(config)}
    save_file({}, path, metadata=metadata)
    return path


def _grey_photo(inp: Inputs) -> Path:
    path = inp.dir / "grey.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(path)
    return path


def _two_people(inp: Inputs) -> Path:
    """Two real faces side by side: scikit-image's astronaut and matplotlib's Grace Hopper."""
    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    canvas = np.full((hopper.shape[0], 300 + hopper.shape[1], 3), 128, np.uint8)
    canvas[:300, :300] = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((300, 300)))
    canvas[:, 300:] = hopper
    path = inp.dir / "two.png"
    Image.fromarray(canvas).save(path)
    return path


def _valid_npz() -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, c2w=np.tile(np.eye(4, dtype=np.float32), (4, 1, 1)))
    return buf.getvalue()


def _sidecar_file(inp: Inputs, content: bytes) -> str:
    image, _, _ = write_dataset_frame(inp.dir / "face.png", size=64)
    (inp.dir / "face.npz").write_bytes(content)
    return image


def _truncated_sidecar(inp: Inputs) -> str:
    image, _, _ = write_dataset_frame(inp.dir / "face.png", size=64)
    truncated(inp.dir / "face.npz")
    return image


def _clip_with_truncated_meta(inp: Inputs) -> Path:
    out = inp.dir / "d"
    (out / "clips" / "v").mkdir(parents=True)
    (out / "clips" / "v" / "meta.npz").write_bytes(_valid_npz()[:100])
    return out


def _data_with_truncated_meta(inp: Inputs) -> Path:
    data = inp.data_copy()
    truncated(next((data / "clips").glob("*/meta.npz")))
    return data


def _deep_manifest(inp: Inputs) -> Path:
    data = inp.data_copy()
    (data / "manifest.json").write_text(DEEP_JSON)
    return data


def _listing(folder: Path) -> set:
    """Every path under ``folder``: a command may rewrite its run's files, never add one."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}: {c.name}" for c in CASES])
def test_a_bad_input_is_one_line_and_leaves_nothing(case, tiny_data, tmp_path):
    inputs = Inputs(tmp_path, tiny_data)
    argv = case.build(inputs)
    before = _listing(tmp_path)
    done = run_cli(argv, memory=case.memory)
    err = done.stderr.strip()
    assert done.returncode not in (0, -6, -9, -11), (done.returncode, err[-2000:])
    assert done.returncode == 1, (done.returncode, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith(f"s3d-fast {case.command}: error: ") and case.expect in err, err
    assert _listing(tmp_path) == before, "the command left output behind"


def test_valid_render_fits_the_memory_limit(tmp_path):
    """The bound the memory rows run under: a valid render of the bundled demo needs less."""
    image, _, _ = write_dataset_frame(tmp_path / "face.png", size=64)
    speech, _ = write_speech(tmp_path / "s.wav", seconds=0.3)
    out = tmp_path / "out.mp4"
    done = run_cli(
        ["render", "--image", image, "--audio", speech, "--out", out, "--device", "cpu", "--quiet"],
        memory=True,
        timeout=300,  # with the bake-time adaptation: 120 s ran out on a loaded machine
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["face.npz", "face.png", "out.mp4", "s.wav"]


def test_the_documented_counts_match_the_table():
    counts = {}
    for case in CASES:
        counts[case.command] = counts.get(case.command, 0) + 1
    text = DOC.read_text()
    for command, n in counts.items():
        assert re.search(rf"^\| `{command}` \| {n} \|", text, re.M), f"docs/reliability-commands.md: {command} {n}"
    assert re.search(rf"\*\*{len(CASES)}\*\*", text), f"docs/reliability-commands.md: total {len(CASES)}"
