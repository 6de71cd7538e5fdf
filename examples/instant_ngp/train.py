"""Train Instant-NGP on a NeRF-synthetic scene with nerfacc's occupancy grid and
tiny-cuda-nn's hash grid and fused MLPs, for a wall-clock budget, reporting held-out PSNR
as it goes. Written against nerfacc and tinycudann; without a GPU run it through the
drop-ins:

    python -m s3d_fast.compat examples/instant_ngp/train.py --minutes 10

The scene (make_scene.py) is rendered into --data first when that folder has none.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import nerfacc
import torch
import torch.nn.functional as F
from nerfacc.estimators.occ_grid import OccGridEstimator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import SubjectLoader  # noqa: E402
from radiance_field import NGPRadianceField  # noqa: E402
from rendering import render_image, render_rays  # noqa: E402

AABB = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
HERE = os.path.dirname(os.path.abspath(__file__))


def make_optimizer(parameters, lr: float) -> torch.optim.Optimizer:
    # fused: one pass over the hash table per step; the unfused update makes a pass per term,
    # which on a CPU costs as much as the MLPs
    return torch.optim.Adam(parameters, lr=lr, eps=1e-15, weight_decay=1e-6, fused=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(HERE, "data", "still_life"), help="NeRF-synthetic scene folder")
    parser.add_argument("--size", type=int, default=200, help="image size when the scene must be rendered first")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget, wall clock, evaluation excluded")
    parser.add_argument(
        "--eval-at", type=float, nargs="*", default=(2.0, 5.0), help="also evaluate after these minutes"
    )
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps, if before --minutes")
    parser.add_argument("--test-views", type=int, default=None, help="evaluate on the first N test views (default all)")
    parser.add_argument("--render-step-size", type=float, default=None, help="default: the box diagonal / 512")
    parser.add_argument("--log2-hashmap-size", type=int, default=17)
    parser.add_argument("--max-resolution", type=int, default=1024)
    parser.add_argument("--grid-resolution", type=int, default=128, help="occupancy grid cells per side")
    parser.add_argument("--target-samples", type=int, default=1 << 16, help="samples per training step")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None, help="folder for metrics.json and the test renders")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    return args


def ensure_scene(folder: str, size: int) -> None:
    if os.path.exists(os.path.join(folder, "transforms_test.json")):
        return
    import make_scene

    print(f"rendering the scene into {folder} ({size}x{size})", file=sys.stderr)
    make_scene.make_scene(folder, size, progress=True)


def learning_rate(base: float, step: int, progress: float) -> float:
    """Linear warm-up over 100 steps, then x0.33 at half, three quarters and nine tenths of the budget."""
    warmup = min(1.0, 0.01 + 0.99 * step / 100)
    decays = sum(progress >= m for m in (0.5, 0.75, 0.9))
    return base * warmup * 0.33**decays


def progress(time_fraction: float, step: int, steps) -> float:
    """How far through training: of the time budget, or of --steps when that ends it sooner."""
    return time_fraction if steps is None else max(time_fraction, step / steps)


@torch.no_grad()
def evaluate(radiance_field, estimator, test_dataset, render_step_size, views, out=None, tag=""):
    radiance_field.eval()
    estimator.eval()
    psnrs = []
    for k in range(views):
        data = test_dataset.image(k)
        rgb = render_image(radiance_field, estimator, data, render_step_size)
        mse = F.mse_loss(rgb, data["pixels"]).item()
        psnrs.append(-10.0 * math.log10(max(mse, 1e-12)))
        if out is not None and k < 4:
            from PIL import Image

            image = (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            Image.fromarray(image).save(os.path.join(out, f"test_{k}{tag}.png"))
    radiance_field.train()
    estimator.train()
    return sum(psnrs) / len(psnrs)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)
    ensure_scene(args.data, args.size)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    train_dataset = SubjectLoader(args.data, "train", num_rays=1024, background="random", device=device)
    test_dataset = SubjectLoader(args.data, "test", background="white", device=device)
    test_views = min(args.test_views or len(test_dataset), len(test_dataset))
    aabb = torch.tensor(AABB, device=device)
    render_step_size = args.render_step_size or float((aabb[3:] - aabb[:3]).norm()) / 512

    estimator = OccGridEstimator(roi_aabb=aabb, resolution=args.grid_resolution, levels=1).to(device)
    radiance_field = NGPRadianceField(
        aabb, log2_hashmap_size=args.log2_hashmap_size, max_resolution=args.max_resolution
    ).to(device)
    optimizer = make_optimizer(radiance_field.parameters(), args.lr)

    budget = args.minutes * 60.0
    checkpoints = sorted({m * 60.0 for m in args.eval_at if 0 < m < args.minutes} | {budget})
    results = []
    trained = 0.0
    step = 0
    print(f"training for {args.minutes:g} min on {device} ({torch.get_num_threads()} threads)", file=sys.stderr)
    while checkpoints:
        started = time.perf_counter()
        radiance_field.train()
        estimator.train()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args.lr, step, progress(trained / budget, step, args.steps))

        def occ_eval_fn(x):
            return radiance_field.query_density(x) * render_step_size

        estimator.update_every_n_steps(step=step, occ_eval_fn=occ_eval_fn, occ_thre=1e-2)
        data = train_dataset.random_rays()
        rgb, _, n_samples = render_rays(
            radiance_field, estimator, data["origins"], data["viewdirs"], data["color_bkgd"], render_step_size
        )
        if n_samples > 0:
            # As many rays next step as keep the samples per step near the target.
            rays = train_dataset.num_rays * args.target_samples / n_samples
            train_dataset.num_rays = int(min(max(rays, 256), 1 << 16))
            loss = F.smooth_l1_loss(rgb, data["pixels"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        step += 1
        trained += time.perf_counter() - started

        by_steps = args.steps is not None and step >= args.steps
        if by_steps:
            checkpoints = [trained]  # stopped by steps: evaluate now, and only now
        if trained >= checkpoints[0]:
            minutes = round(checkpoints.pop(0) / 60.0, 2)
            tag = f"_step{step}" if by_steps else f"_{minutes:g}min"
            psnr = evaluate(radiance_field, estimator, test_dataset, render_step_size, test_views, args.out, tag)
            results.append({"minutes": minutes, "steps": step, "test_psnr": psnr})
            print(f"after {minutes:g} min ({step} steps): test PSNR {psnr:.2f} dB over {test_views} views", flush=True)

    if args.out:
        path = os.path.join(args.out, "metrics.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"nerfacc": nerfacc.__version__, "device": str(device), "results": results}, f, indent=1)
        os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
