"""``s3d-fast train``: stage 1 the lip-sync expert, stage 2 the generator.

Single process, or several through torchrun (``--nproc K`` launches them):
DistributedDataParallel with gloo on CPUs and NCCL on GPUs. Every random choice of a
step (which items, which camera, which background rays, the stratified jitter) is drawn
from a generator seeded by (seed, step, rank), so ``--resume`` continues bit for bit:
same step count, same learning-rate schedule, same data.

Run layout: RUN/config.json (the resolved config), RUN/syncnet/ (stage 1 checkpoint),
RUN/checkpoints/step_N/ (generator checkpoints), RUN/metrics.csv, RUN/curves.png,
RUN/profile.txt.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from .errors import S3DError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data set folder (manifest.json): SynthTalk or preprocessed video")
    parser.add_argument("--out", help="run folder: checkpoints, metrics.csv, curves.png")
    parser.add_argument("--config", default="small", help="small | paper (default small)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    parser.add_argument("--steps", type=int, help="generator steps (default: the config's train.steps)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument("--minutes", type=float, help="stop (with a checkpoint) after this much wall time")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--nproc", type=int, default=1, help="processes (DistributedDataParallel through torchrun)")
    parser.add_argument("--profile-steps", type=int, default=0, metavar="N",
                        help="after training, profile N more forward+backward passes (no update) and write the "
                             "share of each model stage to RUN/profile.txt")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve_config(args):
    from .configuration import apply_overrides, config_from_dict
    from .model.config import Config, check_model_config, get_config

    cfg = get_config(args.config)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.resume:
        saved = Path(args.out) / "config.json"
        if not saved.is_file():
            raise S3DError(f"--resume: {saved} not found; start the run without --resume")
        import json

        cfg = config_from_dict(Config, json.loads(saved.read_text())["config"])
    cfg = apply_overrides(cfg, overrides)
    check_model_config(cfg.model)
    return cfg


def run(args) -> int:
    from .configuration import format_config

    if args.print_config and not args.resume:
        print(format_config(resolve_config(args)))
        return 0
    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
    if missing:
        raise S3DError(f"{' and '.join(missing)} required (or --print-config to see the config)")
    cfg = resolve_config(args)
    if args.print_config:
        print(format_config(cfg))
        return 0
    if args.nproc < 1:
        raise S3DError("--nproc must be at least 1")
    if args.nproc > 1:
        from .distributed import launch_with_torchrun

        argv = _argv_for_workers(args)
        return launch_with_torchrun(args.nproc, "s3d_fast.train", argv)
    return Trainer(cfg, args).fit()


def _argv_for_workers(args) -> list:
    """The worker processes' command line: this one's options, minus --nproc."""
    argv = ["--data", str(args.data), "--out", str(args.out), "--config", args.config, "--device", args.device]
    for o in args.overrides:
        argv += ["--set", o]
    for flag, value in (("--steps", args.steps), ("--minutes", args.minutes), ("--profile-steps", args.profile_steps)):
        if value is not None:
            argv += [flag, str(value)]
    for flag, on in (("--resume", args.resume), ("--quiet", args.quiet)):
        if on:
            argv.append(flag)
    return argv


# The model's named stages (torch.profiler.record_function regions), in data-flow order.
STAGES = ("appearance encoder", "slot attention", "audio encoder", "cross-attention", "coarse pass (no grad)",
          "deformation", "tri-planes + decoder", "compositing", "super-resolution")


class Trainer:
    def __init__(self, cfg, args):
        import torch

        from .checkpoint import RunDirectory
        from .distributed import init_distributed, seed_everything

        self.cfg, self.args = cfg, args
        self.dist = init_distributed(args.device)
        self.device = self.dist.device
        self.run = RunDirectory(args.out)
        self.quiet = args.quiet or not self.dist.is_main
        seed_everything(cfg.train.seed, self.dist.rank)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.start_time = time.perf_counter()

    # -- data --------------------------------------------------------------------------
    def _datasets(self):
        from .data.dataset import TalkingHeadDataset
        from .data.manifest import load_manifest

        manifest = load_manifest(self.args.data)
        with_views = all(c.get("views") for c in manifest.clips_in("train"))
        n_clips = len(manifest.clips)
        # Clips are seconds long and decoding one costs far more than keeping it: keep all.
        tc = self.cfg.train
        n_targets = max(tc.frames, tc.sync_frames if self.cfg.loss.sync > 0 else 1)
        q = tc.source_mouth_quantile
        if not 0.0 < q <= 1.0:
            raise S3DError(f"train.source_mouth_quantile must be in (0, 1] (1: any frame), got {q}")
        train = TalkingHeadDataset(self.args.data, "train", n_targets=n_targets, seed=self.cfg.train.seed,
                                   cache_clips=n_clips, views=with_views, source_quantile=q)
        heldout = None
        if manifest.clips_in("heldout"):
            heldout = TalkingHeadDataset(self.args.data, "heldout", n_targets=1, seed=self.cfg.train.seed,
                                         cache_clips=n_clips, source_quantile=q)
        return train, heldout

    def _batch(self, dataset, step: int, size: int):
        import numpy as np
        from torch.utils.data import default_collate

        rng = np.random.default_rng((self.cfg.train.seed, step, self.dist.rank))
        items = [dataset[int(i)] for i in rng.integers(len(dataset), size=size)]
        return default_collate(items)

    # -- stage 1 -----------------------------------------------------------------------
    def sync_stage(self, train):
        """The frozen lip-sync expert, trained first: the generator's sync loss (when
        ``loss.sync`` > 0) and the sync scores of ``s3d-fast eval`` use it. None when
        ``train.sync_steps`` is 0."""
        if self.cfg.train.sync_steps <= 0:
            return None
        from .sync_stage import run_sync_stage

        return run_sync_stage(self, train)

    # -- stage 2 -----------------------------------------------------------------------
    def fit(self) -> int:
        import json

        import torch

        from .configuration import config_to_dict, format_config
        from .distributed import cleanup
        from .train_log import MetricLog, plot_curves

        cfg, run = self.cfg, self.run
        run.root.mkdir(parents=True, exist_ok=True)
        latest = run.latest() if self.args.resume else None
        if not self.args.resume and run.latest() is not None:
            raise S3DError(f"{run.root} already holds a run; pass --resume to continue it or choose another --out")
        if self.dist.is_main:
            tmp = run.root / "config.json.tmp"
            tmp.write_text(json.dumps({"config": config_to_dict(cfg)}, indent=2))
            tmp.replace(run.root / "config.json")
            if not self.quiet:
                print(format_config(cfg))
        train, heldout = self._datasets()
        self.log = MetricLog(run.root, resume_step=self._step_of(latest) if latest else None) if self.dist.is_main else None
        syncnet = self.sync_stage(train)
        gen = Generator(self, train, heldout, syncnet)
        finished = False
        try:
            gen.restore(latest)
            gen.loop()
            finished = True
        except KeyboardInterrupt:
            if self.dist.is_main:
                print(f"\ninterrupted at step {gen.step}: saving a checkpoint", file=sys.stderr)
                gen.save()
            raise
        finally:
            if self.log is not None:
                self.log.close()
                try:
                    plot_curves(run.metrics_path, run.curves_path)
                except Exception as exc:  # a plotting failure must not cost the run its exit code
                    print(f"warning: could not draw {run.curves_path}: {exc}", file=sys.stderr)
            cleanup(synchronize=finished)
        return 0

    @staticmethod
    def _step_of(path: Path) -> int:
        from .checkpoint import read_checkpoint_meta

        return int(read_checkpoint_meta(path)["step"])


def parameters_added(saved_config: dict, cfg, model) -> set:
    """Names of the parameters that ``cfg`` adds to a run saved with ``saved_config``:
    options that grow the model (``model.mouth_cavity``) may be switched on when a run is
    resumed, and what they add starts from its initialisation."""
    was_on = bool(saved_config.get("model", {}).get("mouth_cavity", False))
    if was_on or not cfg.model.mouth_cavity:
        return set()
    return {name for name, _ in model.named_parameters() if "cavity" in name}


def _optimizer_state_with_new_parameters(state: dict, model, added: set) -> dict:
    """An Adam state saved for the model without ``added`` -> the same state for the model
    with them: torch numbers parameters by their place in ``model.parameters()``, and the
    new ones sit among the old. The new ones get no moments (Adam starts them afresh)."""
    names = [name for name, _ in model.named_parameters()]
    old_to_new = [i for i, name in enumerate(names) if name not in added]
    (group,) = state["param_groups"]
    if len(group["params"]) != len(old_to_new):
        from .errors import S3DError

        raise S3DError(f"the saved optimizer holds {len(group['params'])} parameters, the model without "
                       f"{sorted(added)} has {len(old_to_new)}")
    return {
        "state": {old_to_new[int(i)]: s for i, s in state["state"].items()},
        "param_groups": [{**group, "params": list(range(len(names)))}],
    }


def freeze_all_but(model, train_only: str) -> None:
    """Train only the named top-level modules of the generator (comma-separated, e.g.
    "superres"); the rest keep their weights and, holding no gradient, cost no backward
    pass. An empty string trains everything."""
    names = [n.strip() for n in train_only.split(",") if n.strip()]
    if not names:
        return
    children = dict(model.named_children())
    unknown = [n for n in names if n not in children]
    if unknown:
        raise S3DError(f"train.train_only: no module {unknown[0]!r} in the generator; choose from {', '.join(children)}")
    for name, child in children.items():
        child.requires_grad_(name in names)


class Generator:
    """Stage 2: the generator's optimisation loop, checkpoints, evaluation and profile."""

    def __init__(self, trainer: Trainer, train, heldout, syncnet):
        import torch

        from .model import S3DNeRF

        self.t, self.train_set, self.heldout = trainer, train, heldout
        cfg = trainer.cfg
        self.cfg = cfg
        self.model = S3DNeRF(cfg.model).to(trainer.device)
        freeze_all_but(self.model, cfg.train.train_only)  # before DDP, which syncs only trained weights
        self.syncnet = syncnet
        self.module = self.model
        if trainer.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.module = DistributedDataParallel(self.model)
        tc = cfg.train
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr, betas=(0.9, 0.99))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.timers = {}

    def _lr_factor(self, step: int) -> float:
        tc = self.cfg.train
        if step < tc.warmup_steps:
            return (step + 1) / tc.warmup_steps
        progress = min(1.0, (step - tc.warmup_steps) / max(1, tc.steps - tc.warmup_steps))
        return tc.lr_min_ratio + (1 - tc.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    # -- checkpoints -----------------------------------------------------------------------
    def restore(self, path) -> None:
        from .checkpoint import load_checkpoint, load_model_state

        if path is None:
            return
        ckpt = load_checkpoint(path, map_location=self.t.device, with_training=True)
        added = parameters_added(ckpt.config, self.cfg, self.model)
        load_model_state(self.model, ckpt.model_state, may_miss=added)
        optimizer_state = ckpt.optimizers["generator"]
        if added:
            optimizer_state = _optimizer_state_with_new_parameters(optimizer_state, self.model, added)
            if self.t.dist.is_main and not self.t.quiet:
                print(f"resumed into a larger model: {len(added)} new parameter tensors start from their "
                      f"initialisation ({', '.join(sorted(added))})")
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(ckpt.schedulers["generator"])
        # The schedule follows this run's train.steps: resuming with a larger --steps
        # stretches the cosine from here on instead of keeping the old, finished one.
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self._lr_factor(self.scheduler.last_epoch)
        self.step = ckpt.step
        if self.t.dist.is_main and not self.t.quiet:
            print(f"resumed from {path} at step {self.step}")

    def save(self) -> None:
        from .checkpoint import save_checkpoint
        from .configuration import config_to_dict
        from .model.io import KIND

        run = self.t.run
        save_checkpoint(
            run.checkpoint_path(self.step), model_state=self.model.state_dict(), config=config_to_dict(self.cfg),
            step=self.step, extra={"kind": KIND}, optimizers={"generator": self.optimizer.state_dict()},
            schedulers={"generator": self.scheduler.state_dict()},
        )
        run.prune(keep=3)

    # -- one step ------------------------------------------------------------------------------
    def _timed(self, name, start):
        now = time.perf_counter()
        self.timers[name] = self.timers.get(name, 0.0) + now - start
        return now

    def train_step(self, update: bool = True) -> dict:
        """One optimisation step; ``update=False`` (profiling) runs forward and backward
        on the unwrapped model and leaves the weights, optimizer and schedule alone."""
        import torch

        from .model.losses import generator_losses

        cfg, tc, dev = self.cfg, self.cfg.train, self.t.device
        torch.manual_seed(hash((tc.seed, self.step, self.t.dist.rank)) & 0x7FFFFFFF)
        clock = time.perf_counter()
        batch = self.t._batch(self.train_set, self.step, tc.batch_size)
        sync_on = self.syncnet is not None and self.step >= tc.sync_start and cfg.loss.sync > 0
        # Five frames only while the sync expert needs them: rendering is most of a step.
        T = tc.sync_frames if sync_on else tc.frames
        for key in ("target", "target_masks", "target_c2w", "mel", "view_target", "view_masks", "view_c2w"):
            if key in batch:
                batch[key] = batch[key][:, :T]
        use_view = "view_target" in batch and bool(torch.rand(()) < tc.view_probability)
        if use_view:
            target, masks, c2w = batch["view_target"], batch["view_masks"], batch["view_c2w"]
        else:
            target, masks, c2w = batch["target"], batch["target_masks"], batch["target_c2w"]
        target, masks, c2w = target.to(dev), masks.to(dev), c2w.to(dev)
        r = cfg.model.nerf_resolution
        # Render the head (dilated mask) and a sample of the background; the rest is
        # background by construction, which is what most of a portrait is.
        head = torch.nn.functional.max_pool2d((masks > 0).float().flatten(0, 1)[:, None], masks.shape[-1] // r)
        head = torch.nn.functional.max_pool2d(head, 5, 1, 2).view(*masks.shape[:2], r, r) > 0
        ray_mask = head | (torch.rand(head.shape, device=dev) < 0.1)
        clock = self._timed("data", clock)

        mel = batch["mel"].to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            tokens = self.model.audio_tokens(mel)
            source_c2w = batch["source_c2w"].to(dev) if tc.reproject_source else None
            out = (self.module if update else self.model)(batch["source"].to(dev), batch["source_mask"].to(dev), tokens, c2w,
                              batch["K"].to(dev), stratified=True, ray_mask=ray_mask, source_c2w=source_c2w)
            sync_fn = None
            if sync_on:
                from .model.syncnet import sync_loss

                sync_fn = lambda rgb: sync_loss(self.syncnet, rgb, mel)  # noqa: E731
            losses = generator_losses(out, target, masks, cfg.loss, sync_fn)
        clock = self._timed("forward", clock)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        clock = self._timed("backward", clock)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        if not update:
            self.optimizer.zero_grad(set_to_none=True)
            return {k: float(v.detach()) for k, v in losses.items()}
        self.optimizer.step()
        self.scheduler.step()
        self._timed("optimizer", clock)
        metrics = {k: float(v.detach()) for k, v in losses.items()}
        metrics["grad_norm"] = float(grad_norm)
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        return metrics

    # -- the loop --------------------------------------------------------------------------------
    def loop(self) -> None:
        import torch

        from .distributed import all_reduce_mean, any_rank

        tc, t = self.cfg.train, self.t
        bar = None
        if not t.quiet:
            from tqdm import tqdm

            bar = tqdm(total=tc.steps, initial=self.step, desc="generator", unit="step", dynamic_ncols=True)
        deadline = None if t.args.minutes is None else t.start_time + 60 * t.args.minutes
        self.model.train()
        window = []
        while self.step < tc.steps:
            start = time.perf_counter()
            metrics = self.train_step()
            self.step += 1
            window.append(time.perf_counter() - start)
            if self.step % tc.log_every == 0 or self.step == tc.steps:
                metrics = all_reduce_mean(metrics)
                metrics["steps_per_s"] = len(window) / sum(window)
                window = []
                if t.log is not None:
                    t.log.log(self.step, "generator", **metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['total']:.4f}", l1=f"{metrics['photometric']:.4f}",
                                sync=f"{metrics.get('sync', float('nan')):.3f}")
            if self.heldout is not None and (self.step % tc.eval_every == 0 or self.step == tc.steps):
                self.evaluate()
            out_of_time = deadline is not None and time.perf_counter() > deadline
            if deadline is not None:
                # Each process reads its own clock: without agreeing, one could stop while
                # the others step on into a collective it never joins.
                out_of_time = any_rank(out_of_time)
            if self.step % tc.checkpoint_every == 0 or self.step == tc.steps or out_of_time:
                if t.dist.is_main:
                    self.save()
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        if t.dist.distributed:
            divergence = self.replica_divergence()
            if t.log is not None:
                t.log.log(self.step, "replicas", replica_divergence=divergence)
            if divergence != 0 and t.dist.is_main:
                print(f"warning: the {t.dist.world_size} replicas' weights differ by {divergence:g}", file=sys.stderr)
        if t.dist.is_main:
            self.write_profile()
            if t.args.profile_steps > 0:
                self.profile_stages(t.args.profile_steps)

    def replica_divergence(self) -> float:
        """Largest difference between the replicas' weight fingerprints (0: in sync).
        DDP keeps replicas identical only if every rank took the same steps; this checks it."""
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            fp = torch.stack([torch.stack([p.double().sum(), p.double().square().sum()]) for p in self.model.parameters()])
        hi, lo = fp.clone(), fp.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        return float((hi - lo).abs().max())

    def evaluate(self) -> None:
        import torch

        from .metrics.image import psnr

        t, tc = self.t, self.cfg.train
        if not t.dist.is_main:
            return
        start = time.perf_counter()
        self.model.eval()
        scores = []
        with torch.no_grad():
            for i in range(min(tc.eval_items, len(self.heldout))):
                index = (i * 7919) % len(self.heldout)  # spread over clips and identities
                item = self.heldout[index]
                dev = t.device
                tokens = self.model.audio_tokens(item["mel"][None].to(dev))
                source_c2w = item["source_c2w"][None].to(dev) if tc.reproject_source else None
                out = self.model(item["source"][None].to(dev), item["source_mask"][None].to(dev), tokens,
                                 item["target_c2w"][None].to(dev), item["K"][None].to(dev), stratified=False,
                                 source_c2w=source_c2w)
                scores.append(float(psnr(out["rgb"][0].clamp(0, 1), item["target"].to(dev))))
        self.model.train()
        self.timers["eval"] = self.timers.get("eval", 0.0) + time.perf_counter() - start
        if t.log is not None:
            t.log.log(self.step, "eval", heldout_psnr=sum(scores) / len(scores))

    def profile_stages(self, n: int) -> None:
        """Share of a training step per model stage (the ``stage`` regions of
        s3d_fast.model.s3d), from torch.profiler over ``n`` forward+backward passes."""
        from torch.profiler import ProfilerActivity, profile

        step = self.step
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for i in range(n):
                self.step = step + i  # fresh data each pass; the counter is restored below
                self.train_step(update=False)
            wall = time.perf_counter() - start
        self.step = step
        rows = {}
        for event in prof.key_averages():
            if event.key in STAGES:
                rows[event.key] = event.cpu_time_total / 1e6  # inclusive, seconds
        lines = [f"\nforward stages over {n} profiled steps (inclusive CPU time, % of the whole step; "
                 f"backward and the rest make up the remainder):"]
        for name in STAGES:
            if name in rows:
                lines.append(f"  {name:<24} {rows[name] / n * 1000:8.1f} ms/step  {100 * rows[name] / wall:5.1f} %")
        lines.append(f"  {'whole step':<24} {wall / n * 1000:8.1f} ms/step")
        text = "\n".join(lines) + "\n"
        path = self.t.run.root / "profile.txt"
        tmp = path.with_suffix(".txt.tmp")
        tmp.write_text((path.read_text() if path.exists() else "") + text)
        tmp.replace(path)
        if not self.t.quiet:
            print(text, end="")

    def write_profile(self) -> None:
        total = sum(self.timers.values()) or 1.0
        lines = ["share of generator wall time by stage (this process):"]
        for name, secs in sorted(self.timers.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<10} {secs:9.1f} s  {100 * secs / total:5.1f} %")
        text = "\n".join(lines) + "\n"
        tmp = self.t.run.root / "profile.txt.tmp"
        tmp.write_text(text)
        tmp.replace(self.t.run.root / "profile.txt")
        if not self.t.quiet:
            print(text, end="")


def main(argv=None) -> int:
    """Entry point for ``python -m s3d_fast.train`` (what torchrun launches)."""
    parser = argparse.ArgumentParser(prog="s3d_fast.train")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except S3DError as exc:
        print(f"s3d-fast train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
