"""Stage 2: the generator's optimisation loop, its checkpoints and its held-out check.

Every random choice of a step (which items, which camera, which background rays, the
stratified jitter) is drawn from generators seeded by (seed, step, rank), so ``--resume``
continues bit for bit: same step count, same learning-rate schedule, same data.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoint import (
    Checkpoint,
    CheckpointFormatError,
    RunDirectory,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from ..config import Config, config_to_dict, phase_spans
from ..errors import S3DError
from ..metrics.image import psnr
from ..model import GENERATOR_KIND, S3DNeRF
from ..model.losses import generator_losses
from ..model.syncnet import sync_loss
from .batches import draw_batch
from .distributed import DistContext, all_reduce_mean, any_rank
from .metric_log import MetricLog
from .resume import optimizer_state_with_new_parameters, parameters_added
from .weight_average import WeightAverage

AVERAGE_KEY = "weight_average"  # its state in a checkpoint's training files, beside the optimizer's
TARGET_KEYS = ("target", "target_masks", "target_c2w", "mel", "view_target", "view_masks", "view_c2w")


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
        raise S3DError(
            f"train.train_only: no module {unknown[0]!r} in the generator; choose from {', '.join(children)}"
        )
    for name, child in children.items():
        child.requires_grad_(name in names)


class GeneratorStage:
    """The generator trained with one config over the steps ``span`` = [start, end): the
    whole run, or one of its phases (``train.phases``)."""

    def __init__(
        self,
        cfg: Config,
        span: tuple[int, int],
        dist_context: DistContext,
        run: RunDirectory,
        log: Optional[MetricLog],
        train_set,
        heldout,
        syncnet,
        quiet: bool,
        timers: dict[str, float],
    ):
        self.cfg, self.span, self.dist, self.run, self.log = cfg, span, dist_context, run, log
        self.device = dist_context.device
        self.train_set, self.heldout, self.syncnet, self.quiet = train_set, heldout, syncnet, quiet
        self.timers = timers
        self.model = S3DNeRF(cfg.model).to(self.device)
        freeze_all_but(self.model, cfg.train.train_only)  # before DDP, which syncs only trained weights
        # The interior's painter works only where a frame's mouth is open: a process whose
        # frames are all closed leaves it out of its graph, which DDP must be told of.
        self.module = self.model
        if dist_context.distributed:
            self.module = DistributedDataParallel(self.model, find_unused_parameters=cfg.model.mouth_interior)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, betas=(0.9, 0.99))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.average = WeightAverage.for_span(self.model, span, cfg.train.average_last)
        self.step = span[0]

    def lr_factor(self, step: int) -> float:
        """Linear warm-up from step 0, then a cosine decay to ``lr_min_ratio`` at the end of
        the span (a later phase starts its cosine afresh, without a warm-up)."""
        tc = self.cfg.train
        start, end = self.span
        if start == 0 and step < tc.warmup_steps:
            return (step + 1) / tc.warmup_steps
        begin = tc.warmup_steps if start == 0 else start
        progress = min(1.0, (step - begin) / max(1, end - begin))
        return tc.lr_min_ratio + (1 - tc.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    # -- checkpoints -----------------------------------------------------------------------
    def restore(self, checkpoint) -> None:
        """Continue from a checkpoint of this run: its folder, or one already loaded
        (``load_checkpoint(..., with_training=True)``)."""
        ckpt = checkpoint
        if not isinstance(ckpt, Checkpoint):
            ckpt = load_checkpoint(checkpoint, map_location=self.device, with_training=True)
        self.take_over(
            ckpt.config, ckpt.model_state, ckpt.optimizers["generator"], ckpt.schedulers["generator"], ckpt.step
        )
        self.restore_average(ckpt.optimizers.get(AVERAGE_KEY))
        self._say(f"resumed from {ckpt.path} at step {self.step}")

    def initialise(self, checkpoint: Checkpoint) -> None:
        """Start from another run's weights (``--init``); the optimizer and the schedule start
        afresh, and parameters this config adds keep their initialisation."""
        added = parameters_added(checkpoint.config, self.cfg, self.model)
        load_model_state(self.model, checkpoint.model_state, may_miss=added)
        grown = f"; {len(added)} new parameter tensor(s) start untrained" if added else ""
        self._say(f"initialised from {checkpoint.path} (its step {checkpoint.step}){grown}")

    def hand_over(self) -> tuple:
        """What the next phase's stage continues from (``take_over``), without a round trip to disk."""
        return (
            config_to_dict(self.cfg),
            self.model.state_dict(),
            self.optimizer.state_dict(),
            self.scheduler.state_dict(),
            self.step,
        )

    def take_over(self, config: dict, model_state, optimizer_state, scheduler_state, step: int) -> None:
        """Weights, optimizer and schedule saved under ``config`` (an earlier phase's, or this
        one's): parameters this config adds start from their initialisation."""
        added = parameters_added(config, self.cfg, self.model)
        load_model_state(self.model, model_state, may_miss=added)
        if added:
            optimizer_state = optimizer_state_with_new_parameters(optimizer_state, self.model, added)
            what = "tensors start from their" if len(added) > 1 else "tensor starts from its"
            self._say(f"grew the model: {len(added)} new parameter {what} initialisation ({', '.join(sorted(added))})")
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(scheduler_state)
        # The schedule follows this config: its train.lr and steps (resuming with a larger
        # --steps stretches the cosine from here on instead of keeping the old, finished one).
        self.scheduler.base_lrs = [self.cfg.train.lr for _ in self.optimizer.param_groups]
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.lr_factor(self.scheduler.last_epoch)
        self.step = step

    def restore_average(self, state: Optional[dict]) -> None:
        """The weight average a checkpoint saved part-way through its window; one clear
        error where the checkpoint and this run's ``train.average_last`` disagree."""
        average = self.average
        averaging = average is not None and average.first <= self.step < average.last
        if state is not None and average is None:
            raise CheckpointFormatError(
                f"the checkpoint of step {self.step} is part-way through a weight average: resume with "
                "the train.average_last it was saved with"
            )
        if state is not None:
            average.load_state_dict(state)
        elif averaging:
            raise CheckpointFormatError(
                f"the checkpoint of step {self.step} lies in the last {self.cfg.train.average_last} steps of its "
                "phase but holds no weight average: resume with the train.average_last it was saved with"
            )

    def save(self) -> None:
        optimizers = {"generator": self.optimizer.state_dict()}
        if self.average is not None and self.average.count and self.step < self.average.last:
            optimizers[AVERAGE_KEY] = self.average.state_dict()
        save_checkpoint(
            self.run.checkpoint_path(self.step),
            model_state=self.model.state_dict(),
            config=config_to_dict(self.cfg),
            step=self.step,
            extra={"kind": GENERATOR_KIND},
            optimizers=optimizers,
            schedulers={"generator": self.scheduler.state_dict()},
        )
        # Each phase's last step stays: a later phase can be run again from it (--resume on a copy).
        self.run.prune(keep=3, keep_steps=[end for _, end in phase_spans(self.cfg)[:-1]])

    def _say(self, text: str) -> None:
        if self.dist.is_main and not self.quiet:
            print(text)

    # -- one step ------------------------------------------------------------------------------
    def _timed(self, name, start):
        now = time.perf_counter()
        self.timers[name] = self.timers.get(name, 0.0) + now - start
        return now

    def train_step(self, update: bool = True) -> dict:
        """One optimisation step; ``update=False`` (profiling) runs forward and backward
        on the unwrapped model and leaves the weights, optimizer and schedule alone."""
        cfg, tc, dev = self.cfg, self.cfg.train, self.device
        torch.manual_seed(hash((tc.seed, self.step, self.dist.rank)) & 0x7FFFFFFF)
        clock = time.perf_counter()
        batch = draw_batch(self.train_set, tc.seed, self.step, self.dist.rank, tc.batch_size)
        sync_on = self.syncnet is not None and self.step >= tc.sync_start and cfg.loss.sync > 0
        # Five frames only while the sync expert needs them: rendering is most of a step.
        T = tc.sync_frames if sync_on else tc.frames
        for key in TARGET_KEYS:
            if key in batch:
                batch[key] = batch[key][:, :T]
        use_view = "view_target" in batch and bool(torch.rand(()) < tc.view_probability)
        prefix = "view_" if use_view else "target_"
        target = batch["view_target" if use_view else "target"].to(dev)
        masks, c2w = batch[prefix + "masks"].to(dev), batch[prefix + "c2w"].to(dev)
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
            out = (self.module if update else self.model)(
                batch["source"].to(dev),
                batch["source_mask"].to(dev),
                tokens,
                c2w,
                batch["K"].to(dev),
                stratified=True,
                ray_mask=ray_mask,
                source_c2w=source_c2w,
            )
            sync_fn = (lambda rgb: sync_loss(self.syncnet, rgb, mel)) if sync_on else None
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
    def loop(self, deadline: Optional[float]) -> bool:
        """Step to the end of the span, or until ``deadline`` (a ``time.perf_counter``
        value); True when the deadline stopped it."""
        tc = self.cfg.train
        end = self.span[1]
        bar = (
            None
            if self.quiet
            else tqdm(total=tc.steps, initial=self.step, desc="generator", unit="step", dynamic_ncols=True)
        )
        self.model.train()
        window = []
        out_of_time = False
        while self.step < end:
            start = time.perf_counter()
            metrics = self.train_step()
            self.step += 1
            if self.average is not None:
                self.average.update(self.step)
                if self.step == end:  # the phase ends on, saves and hands on the mean
                    self.average.apply()
            window.append(time.perf_counter() - start)
            if self.step % tc.log_every == 0 or self.step == end:
                metrics = all_reduce_mean(metrics)
                metrics["steps_per_s"] = len(window) / sum(window)
                window = []
                if self.log is not None:
                    self.log.log(self.step, "generator", **metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{metrics['total']:.4f}",
                    l1=f"{metrics['photometric']:.4f}",
                    sync=f"{metrics.get('sync', float('nan')):.3f}",
                )
            if self.heldout is not None and (self.step % tc.eval_every == 0 or self.step == end):
                self.evaluate()
            out_of_time = deadline is not None and time.perf_counter() > deadline
            if deadline is not None:
                # Each process reads its own clock: without agreeing, one could stop while
                # the others step on into a collective it never joins.
                out_of_time = any_rank(out_of_time)
            if (self.step % tc.checkpoint_every == 0 or self.step == end or out_of_time) and self.dist.is_main:
                self.save()
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        if self.dist.distributed:
            divergence = self.replica_divergence()
            if self.log is not None:
                self.log.log(self.step, "replicas", replica_divergence=divergence)
            if divergence != 0 and self.dist.is_main:
                print(
                    f"warning: the {self.dist.world_size} replicas' weights differ by {divergence:g}", file=sys.stderr
                )
        return out_of_time

    def replica_divergence(self) -> float:
        """Largest difference between the replicas' weight fingerprints (0: in sync).
        DDP keeps replicas identical only if every rank took the same steps; this checks it."""
        with torch.no_grad():
            fp = torch.stack(
                [torch.stack([p.double().sum(), p.double().square().sum()]) for p in self.model.parameters()]
            )
        hi, lo = fp.clone(), fp.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        return float((hi - lo).abs().max())

    def evaluate(self) -> None:
        """Held-out PSNR of a few items, logged as the run's ``eval`` rows (main process)."""
        tc = self.cfg.train
        if not self.dist.is_main:
            return
        start = time.perf_counter()
        self.model.eval()
        scores = []
        dev = self.device
        with torch.no_grad():
            for i in range(min(tc.eval_items, len(self.heldout))):
                item = self.heldout[(i * 7919) % len(self.heldout)]  # spread over clips and identities
                tokens = self.model.audio_tokens(item["mel"][None].to(dev))
                source_c2w = item["source_c2w"][None].to(dev) if tc.reproject_source else None
                out = self.model(
                    item["source"][None].to(dev),
                    item["source_mask"][None].to(dev),
                    tokens,
                    item["target_c2w"][None].to(dev),
                    item["K"][None].to(dev),
                    stratified=False,
                    source_c2w=source_c2w,
                )
                scores.append(float(psnr(out["rgb"][0].clamp(0, 1), item["target"].to(dev))))
        self.model.train()
        self.timers["eval"] = self.timers.get("eval", 0.0) + time.perf_counter() - start
        if self.log is not None:
            self.log.log(self.step, "eval", heldout_psnr=sum(scores) / len(scores))
