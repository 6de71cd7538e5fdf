"""A training run: its folder, its data, then the lip-sync expert's stage and the
generator's, a checkpoint on Ctrl-C, and the curves and profile at the end."""

from __future__ import annotations

import json
import sys
import time

import torch

from .. import atomic
from ..checkpoint import CheckpointError, RunDirectory, load_checkpoint, resolve_checkpoint
from ..config import config_at, config_to_dict, format_config, phase_spans
from ..data.dataset import TalkingHeadDataset
from ..data.manifest import load_manifest
from ..errors import S3DError
from .determinism import use_deterministic_algorithms
from .distributed import cleanup, init_distributed, seed_everything
from .generator_stage import GeneratorStage
from .metric_log import MetricLog, plot_curves
from .profiling import model_stage_report, wall_time_report, write_report
from .syncnet_stage import run_syncnet_stage


def data_settings(cfg) -> tuple:
    """What the data sets depend on in ``cfg``: target frames per item, seed, the source
    frames' mouth quantile and colour jitter. Phases that keep these share one set."""
    tc = cfg.train
    n_targets = max(tc.frames, tc.sync_frames if cfg.loss.sync > 0 else 1)
    return n_targets, tc.seed, tc.source_mouth_quantile, tc.colour_jitter


class Trainer:
    def __init__(self, cfg, args):
        self.cfg, self.args = cfg, args
        use_deterministic_algorithms(cfg.train.deterministic)  # before CUDA starts
        self.dist = init_distributed(args.device)
        self.device = self.dist.device
        self.run = RunDirectory(args.out)
        self.quiet = args.quiet or not self.dist.is_main
        seed_everything(cfg.train.seed, self.dist.rank)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.start_time = time.perf_counter()
        self.log = None

    def datasets(self, cfg):
        """The training split (every clip kept in memory), and the held-out split if any,
        as ``cfg`` draws them."""
        manifest = load_manifest(self.args.data)
        with_views = all(c.get("views") for c in manifest.clips_in("train"))
        n_clips = len(manifest.clips)
        # Clips are seconds long and decoding one costs far more than keeping it: keep all.
        n_targets, seed, q, colour_jitter = data_settings(cfg)
        if not 0.0 < q <= 1.0:
            raise S3DError(f"train.source_mouth_quantile must be in (0, 1] (1: any frame), got {q}")
        train = TalkingHeadDataset(
            self.args.data,
            "train",
            n_targets=n_targets,
            seed=seed,
            cache_clips=n_clips,
            views=with_views,
            source_quantile=q,
            colour_jitter=colour_jitter,
        )
        heldout = None
        if manifest.clips_in("heldout"):
            heldout = TalkingHeadDataset(
                self.args.data, "heldout", n_targets=1, seed=seed, cache_clips=n_clips, source_quantile=q
            )
        return train, heldout

    def fit(self) -> int:
        cfg, run = self.cfg, self.run
        resume = self.args.resume
        try:
            atomic.check_output_folder(run.root)
        except atomic.OutputPathError as exc:
            raise S3DError(f"--out {exc}") from None
        if not resume and run.latest() is not None:
            raise S3DError(f"{run.root} already holds a run; pass --resume to continue it or choose another --out")
        self.check_data(cfg)
        latest, step = self.resume_point() if resume else (None, 0)
        self.init_path = self.args.init or (self.saved_init() if resume else None)
        init = self.init_point() if latest is None else None
        created = self.make_run_folder()
        try:
            return self.train(latest, step, init)
        except BaseException:
            if not resume and self.dist.is_main:
                self.remove_unusable_run(created)
            raise

    def check_data(self, cfg) -> None:
        """The data set's frames at the size the model takes, before anything is trained."""
        manifest = load_manifest(self.args.data)
        if manifest.resolution != cfg.model.input_resolution:
            raise S3DError(
                f"--data {self.args.data}: frames are {manifest.resolution}^2 but model.input_resolution is "
                f"{cfg.model.input_resolution} (--set model.input_resolution={manifest.resolution}, with the "
                "other model sizes to match, or a data set made at that size)"
            )
        if not manifest.clips_in("train"):
            raise S3DError(f"--data {self.args.data}: no clips in the train split")

    def make_run_folder(self) -> bool:
        """Create the run folder (True if this run created it), checking it can be written."""
        root = self.run.root
        created = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
            atomic.probe_writable(root)
        except OSError as exc:
            raise S3DError(f"--out {root}: cannot write the run folder ({exc.strerror or exc})") from None
        return created

    def resume_point(self):
        """The newest checkpoint that loads whole (an older one, with a warning, when the
        newest is damaged) and its step; (None, 0) for a run with none yet."""
        found = self.run.checkpoints()
        for _, path in reversed(found):
            try:
                ckpt = load_checkpoint(path, map_location="cpu", with_training=True)
            except CheckpointError as exc:
                if self.dist.is_main:
                    print(f"warning: skipping a damaged checkpoint: {exc}", file=sys.stderr)
                continue
            return ckpt, ckpt.step
        if found:
            raise S3DError(f"--resume: no checkpoint in {self.run.checkpoints_dir} can be read")
        return None, 0

    def saved_init(self):
        """The ``--init`` a resumed run was started with (its config.json keeps it), or None."""
        try:
            return json.loads(self.run.config_path.read_text()).get("init")
        except (OSError, ValueError, AttributeError):
            return None

    def init_point(self):
        """The checkpoint whose weights the run starts from (``--init``, kept for a
        ``--resume`` before the run's first checkpoint); None: from scratch."""
        if not self.init_path:
            return None
        try:
            return load_checkpoint(resolve_checkpoint(self.init_path), map_location=self.dist.device)
        except CheckpointError as exc:
            raise S3DError(f"--init: {exc}") from None

    def remove_unusable_run(self, created: bool) -> None:
        """A run that failed before it had anything to resume from leaves no folder behind
        (only its own files go; a folder that existed before stays)."""
        run = self.run
        if run.syncnet_path.exists() or run.checkpoints():
            return
        for path in (run.config_path, run.metrics_path, run.curves_path, run.profile_path):
            if path.is_file():
                path.unlink()
        if run.checkpoints_dir.is_dir() and not any(run.checkpoints_dir.iterdir()):
            run.checkpoints_dir.rmdir()
        if created and run.root.is_dir() and not any(run.root.iterdir()):
            run.root.rmdir()

    def train(self, latest, step: int, init=None) -> int:
        cfg, run = self.cfg, self.run
        if self.dist.is_main:
            saved = {"config": config_to_dict(cfg)}
            if self.init_path:  # where its weights came from; --resume before the first checkpoint needs it
                saved["init"] = str(self.init_path)
            atomic.write_text(run.config_path, json.dumps(saved, indent=2))
            if not self.quiet:
                print(format_config(cfg))
        start_cfg = config_at(cfg, step)
        train, heldout = self.datasets(start_cfg)
        if self.dist.is_main:
            # On --resume the lip-sync stage's rows stay as long as its expert does.
            keep = ("sync",) if self.args.resume and run.syncnet_path.is_file() else ()
            resume_step = step if latest is not None else (-1 if self.args.resume else None)
            self.log = MetricLog(run.root, resume_step=resume_step, keep_stages=keep)
        deadline = None if self.args.minutes is None else self.start_time + 60 * self.args.minutes
        timers: dict[str, float] = {}
        stage, finished = None, False
        try:
            syncnet = run_syncnet_stage(self, train) if cfg.train.sync_steps > 0 else None
            for start, end in phase_spans(cfg):
                if end <= step:
                    continue
                phase_cfg = config_at(cfg, start)
                if phase_cfg != start_cfg and not self.quiet:
                    print(f"step {start}: a new phase of the run\n" + format_config(phase_cfg))
                # The finished phase's stage goes before anything new is built: with its data
                # sets it holds every decoded clip, and a run of four phases would hold two.
                handed = stage.hand_over() if stage is not None else None
                stage = None
                if data_settings(phase_cfg) != data_settings(start_cfg):
                    train = heldout = None
                    train, heldout = self.datasets(phase_cfg)
                stage = GeneratorStage(
                    phase_cfg, (start, end), self.dist, run, self.log, train, heldout, syncnet, self.quiet, timers
                )
                if handed is not None:  # the next phase continues in this process
                    stage.take_over(*handed)
                    handed = None
                elif latest is not None:
                    stage.restore(latest)
                elif init is not None:
                    stage.initialise(init)
                start_cfg = phase_cfg
                if stage.loop(deadline):
                    break
            if self.dist.is_main and stage is not None:
                self.write_profiles(stage)
            finished = True
        except KeyboardInterrupt:
            if self.dist.is_main and stage is not None:
                print(f"\ninterrupted at step {stage.step}: saving a checkpoint", file=sys.stderr)
                stage.save()
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

    def write_profiles(self, stage: GeneratorStage) -> None:
        """RUN/profile.txt: the loop's wall time by stage, then with ``--profile-steps N``
        the model stages' shares over N more forward+backward passes (no update)."""
        text = wall_time_report(stage.timers)
        write_report(self.run.profile_path, text)
        if not self.quiet:
            print(text, end="")
        n = self.args.profile_steps
        if n <= 0:
            return
        step = stage.step

        def step_once(i: int) -> None:
            stage.step = step + i  # fresh data each pass; the counter is restored below
            stage.train_step(update=False)

        try:
            text = model_stage_report(step_once, n)
        finally:
            stage.step = step
        write_report(self.run.profile_path, text, append=True)
        if not self.quiet:
            print(text, end="")
