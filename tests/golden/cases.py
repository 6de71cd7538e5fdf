"""Outputs that a restructuring of the package must not change, computed from scratch.

``python tests/golden/cases.py --write`` saves them to ``outputs.safetensors`` beside this
file, with a fingerprint of the build and processor that computed them;
``tests/test_golden.py`` recomputes them and compares: bit for bit where the fingerprint
matches, within ``TOLERANCES`` elsewhere (another processor or compiler may round the
fused kernels' float sums in another order).

Three groups: the demo's frames (the bundled checkpoint, baked real-time path and the
training-style path), every fused op forward and backward on seeded inputs, and the
first steps of a tiny training run.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUTPUTS = HERE / "outputs.safetensors"
FINGERPRINT = HERE / "fingerprint.json"

# (rtol, atol) per group, for a machine other than the one that wrote the outputs.
TOLERANCES = {
    "demo.baked": (0.0, 2.0),  # uint8 frames: within 2 levels
    "demo.training_style": (1e-3, 1e-3),
    # The gradient by position sums each level's corner features times the weights' slopes,
    # which grow with the level's resolution: rounded in another order (another processor's
    # vector width) its entries near 0 move by about 2e-5.
    "ops.hashgrid.grad_x": (1e-4, 1e-4),
    "ops": (1e-4, 1e-5),
    "train.losses": (1e-3, 1e-5),
    "train.weights": (1e-3, 1e-4),
}
DEMO_FRAMES = 8
TRAIN_STEPS = 3


def fingerprint() -> dict:
    """What must match for the outputs to be bit-identical: the torch build, the
    processor (model and flags), the compiler and the thread count. Not the sources:
    they are what the comparison checks."""
    import subprocess

    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "flags") and key not in cpu:
                cpu[key] = value.strip()
    except OSError:
        cpu["processor"] = platform.processor()
    return {
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu": cpu.get("model name", cpu.get("processor", "")),
        "cpu_flags": hashlib.sha256(cpu.get("flags", "").encode()).hexdigest()[:16],
        "compiler": subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "threads": torch.get_num_threads(),
    }


def group_of(name: str) -> str:
    """The most specific entry of ``TOLERANCES`` for an output: its own name, else its group."""
    return next(g for g in TOLERANCES if name == g or name.startswith(g + "."))


# ----------------------------------------------------------------------------- demo


def demo_outputs() -> dict:
    from s3d_fast import Renderer
    from s3d_fast.render import api
    from s3d_fast.render.cli import DEMO_ORBIT

    renderer = Renderer(device="cpu")
    identity = renderer.bake(api.DEMO_IMAGE)
    speech = api.load_speech(api.DEMO_SPEECH)
    poses = identity.cameras(speech.n_frames, orbit=DEMO_ORBIT)
    frames = []
    for frame in identity.render(speech, pose=poses, batch=4):
        frames.append(torch.from_numpy(frame))
        if len(frames) == DEMO_FRAMES:
            break
    out = {"demo.baked.frames": torch.stack(frames)}

    model, source = renderer.model, identity.source
    with torch.no_grad():
        K = torch.as_tensor(np.asarray(source.K, np.float32)[None])
        K[:, :2] *= model.input_resolution / float(source.resolution)
        c2w = torch.as_tensor(np.asarray(poses[:1], np.float32))
        image = identity.baked.source.image
        tokens = model.audio_tokens(torch.from_numpy(speech.mel[:1]))
        rendered = model.render(identity.baked.source, tokens[None], c2w[None], K, stratified=False)
    for key in ("rgb", "opacity", "score"):
        out[f"demo.training_style.{key}"] = rendered[key].contiguous()
    out["demo.training_style.source"] = image.contiguous()
    return out


# ----------------------------------------------------------------------------- ops


def _leaf(*shape, low=-1.0, high=1.0, generator=None):
    return (torch.rand(*shape, generator=generator) * (high - low) + low).requires_grad_()


def _forward_backward(name: str, fn, inputs: dict, out: dict) -> None:
    result = fn(**inputs)
    results = result if isinstance(result, tuple) else (result,)
    loss = 0.0
    for i, r in enumerate(results):
        if not torch.is_floating_point(r):
            out[f"ops.{name}.out{i}"] = r.contiguous()
            continue
        out[f"ops.{name}.out{i}"] = r.detach().contiguous()
        weight = torch.linspace(-1, 1, r.numel()).view(r.shape)
        loss = loss + (r * weight).sum()
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor) and value.grad is not None:
            out[f"ops.{name}.grad_{key}"] = value.grad.contiguous()
        elif isinstance(value, list):
            for j, v in enumerate(value):
                if isinstance(v, torch.Tensor) and v.grad is not None:
                    out[f"ops.{name}.grad_{key}{j}"] = v.grad.contiguous()


def ops_outputs() -> dict:
    from s3d_fast import ops

    g = torch.Generator().manual_seed(1234)
    out: dict = {}

    planes = [_leaf(2, 3, h, h, 8, generator=g) for h in (5, 9, 17)]
    points = _leaf(2, 301, 3, low=-1.1, high=1.1, generator=g)
    _forward_backward(
        "triplane",
        lambda planes, points: ops.triplane_sample(planes, points),
        {"planes": planes, "points": points},
        out,
    )

    n_levels, features, log2 = 6, 2, 12
    x = _leaf(517, 3, low=0.0, high=1.0, generator=g)
    params = _leaf(28848, low=-1e-2, high=1e-2, generator=g)  # the table size of this grid
    _forward_backward(
        "hashgrid",
        lambda x, params: ops.hashgrid_encode(
            x,
            params,
            n_levels=n_levels,
            n_features_per_level=features,
            log2_hashmap_size=log2,
            base_resolution=4,
            per_level_scale=1.7,
        ),
        {"x": x, "params": params},
        out,
    )

    counts = torch.randint(0, 9, (37,), generator=g)
    ray_indices = torch.repeat_interleave(torch.arange(37), counts)
    n = int(counts.sum())
    t_starts = torch.rand(n, generator=g).sort().values
    t_ends = t_starts + 0.05
    sigmas = _leaf(n, low=0.0, high=5.0, generator=g)
    values = _leaf(n, 6, low=0.0, high=1.0, generator=g)
    _forward_backward(
        "composite",
        lambda sigmas, values: ops.composite(
            sigmas, values, ray_indices=ray_indices, n_rays=37, t_starts=t_starts, t_ends=t_ends, early_stop_eps=1e-3
        ),
        {"sigmas": sigmas, "values": values},
        out,
    )
    sigmas2 = _leaf(n, low=0.0, high=5.0, generator=g)
    _forward_backward(
        "render_weight",
        lambda sigmas: ops.render_weight_from_density(t_starts, t_ends, sigmas, ray_indices=ray_indices, n_rays=37),
        {"sigmas": sigmas2},
        out,
    )

    binaries = torch.rand(2, 1, 16, 16, 16, generator=g) < 0.3
    bits = ops.pack_bits(binaries)
    rays_o = torch.rand(64, 3, generator=g) * 4 - 2
    rays_d = torch.nn.functional.normalize(-rays_o + torch.rand(64, 3, generator=g) * 0.5, dim=-1)
    march = ops.occgrid_march(
        bits,
        (16, 16, 16),
        [-1, -1, -1, 1, 1, 1],
        rays_o,
        rays_d,
        torch.zeros(64),
        torch.full((64,), 6.0),
        0.03,
        grid_indices=torch.randint(0, 2, (64,), generator=g),
    )
    for i, r in enumerate(march):
        out[f"ops.occgrid_march.out{i}"] = r.contiguous()
    return out


# ----------------------------------------------------------------------------- training


def train_outputs() -> dict:
    import csv

    from model_helpers import TINY_OVERRIDES, make_tiny_synthtalk

    from s3d_fast.checkpoint import load_checkpoint
    from s3d_fast.cli import main

    overrides = TINY_OVERRIDES + [
        "train.warmup_steps=1",
        "train.log_every=1",
        "train.eval_every=1000",
        "train.checkpoint_every=1000",
        "loss.sync=0",
        "train.sync_steps=0",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        make_tiny_synthtalk(data)
        argv = ["train", "--data", str(data), "--out", str(run), "--steps", str(TRAIN_STEPS), "--quiet"]
        for o in overrides:
            argv += ["--set", o]
        if main(argv) != 0:
            raise RuntimeError("the tiny training run failed")
        with open(run / "metrics.csv") as f:
            rows = [r for r in csv.DictReader(f) if r["stage"] == "generator"]
        names = ["total", "photometric", "lr"]
        losses = torch.tensor([[float(r[k]) for k in names] for r in rows], dtype=torch.float64)
        ckpt = load_checkpoint(sorted((run / "checkpoints").iterdir())[-1])
    out = {"train.losses.per_step": losses}
    for key, value in ckpt.model_state.items():
        out[f"train.weights.{key}"] = value.contiguous()
    return out


def compute_all() -> dict:
    torch.manual_seed(0)
    out = {}
    out.update(ops_outputs())
    out.update(demo_outputs())
    out.update(train_outputs())
    return out


def main() -> None:
    from safetensors.torch import save_file

    if "--write" not in sys.argv[1:]:
        sys.exit("usage: python tests/golden/cases.py --write   (recomputes and overwrites the saved outputs)")
    sys.path.insert(0, str(HERE.parent))
    outputs = compute_all()
    save_file(outputs, str(OUTPUTS))
    FINGERPRINT.write_text(json.dumps(fingerprint(), indent=2) + "\n")
    print(f"wrote {len(outputs)} tensors to {OUTPUTS}")


if __name__ == "__main__":
    main()
