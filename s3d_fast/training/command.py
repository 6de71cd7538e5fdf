"""What ``s3d-fast train`` does with its arguments: resolve the config, then train in this
process or launch one process per ``--nproc`` under torchrun."""

from __future__ import annotations

import dataclasses
import json

from ..checkpoint import CheckpointError, RunDirectory, read_checkpoint_meta, resolve_checkpoint
from ..config import (
    Config,
    ConfigError,
    apply_overrides,
    check_config,
    check_phases,
    format_config,
    get_config,
    load_config,
)
from ..errors import S3DError
from .distributed import launch_with_torchrun
from .trainer import Trainer


def resolve_config(args) -> Config:
    """The named config, or a resumed run's own, with ``--set`` and ``--steps`` applied."""
    cfg = get_config(args.config)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.deterministic:
        overrides.append("train.deterministic=true")
    if args.resume:
        saved = RunDirectory(args.out).config_path
        if not saved.is_file():
            raise S3DError(f"--resume: {saved} not found; start the run without --resume")
        try:
            cfg = load_config(json.loads(saved.read_text())["config"])
        except ConfigError:
            raise
        except (ValueError, KeyError, TypeError, RecursionError, OSError) as exc:  # not JSON, no "config" in it
            raise S3DError(f"--resume: {saved} is not a run config ({exc})") from None
    elif args.init:  # the weights' own architecture; the training settings stay the named config's
        cfg = dataclasses.replace(cfg, model=load_config(init_checkpoint_meta(args.init)["config"]).model)
    cfg = apply_overrides(cfg, overrides)
    check_config(cfg)
    check_phases(cfg)
    return cfg


def init_checkpoint_meta(path) -> dict:
    """The config.json of ``--init``'s checkpoint (a checkpoint folder or a run's newest)."""
    try:
        return read_checkpoint_meta(resolve_checkpoint(path))
    except CheckpointError as exc:
        raise S3DError(f"--init: {exc}") from None


def train(args) -> int:
    if args.init and args.resume:
        raise S3DError("--init starts a new run and --resume continues one: pass one of them")
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
        return launch_with_torchrun(args.nproc, "s3d_fast.training", argv_for_workers(args))
    return Trainer(cfg, args).fit()


def argv_for_workers(args) -> list:
    """The worker processes' command line: this one's options, minus --nproc."""
    argv = ["--data", str(args.data), "--out", str(args.out), "--config", args.config, "--device", args.device]
    for o in args.overrides:
        argv += ["--set", o]
    for flag, value in (
        ("--steps", args.steps),
        ("--minutes", args.minutes),
        ("--profile-steps", args.profile_steps),
        ("--init", args.init),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for flag, on in (("--resume", args.resume), ("--quiet", args.quiet), ("--deterministic", args.deterministic)):
        if on:
            argv.append(flag)
    return argv
