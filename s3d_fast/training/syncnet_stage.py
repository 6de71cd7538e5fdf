"""Training stage 1: the lip-sync expert, trained on the training split's in-sync and
time-shifted pairs, then frozen for the generator's sync loss. Saved once per run as
RUN/syncnet.safetensors, so a resumed run (or ``s3d-fast eval``) reuses it."""

from __future__ import annotations

from ..errors import S3DError
from ..model.syncnet import freeze, load_syncnet, save_syncnet
from .distributed import barrier
from .syncnet import train_syncnet


def run_syncnet_stage(trainer, train_set):
    """The frozen expert on the trainer's device, trained first if the run has none."""
    cfg, t = trainer.cfg, trainer
    path = t.run.syncnet_path
    if not path.is_file() and t.dist.is_main:

        def log(step, record):
            # Every log_every-th training loss, and every held-out evaluation.
            if t.log is None:
                return
            numbers = {k: v for k, v in record.items() if isinstance(v, (int, float))}
            if any(k.startswith("heldout") for k in numbers) or ("loss" in numbers and step % cfg.train.log_every == 0):
                t.log.log(step, "sync", **{f"sync_{k}": v for k, v in numbers.items()})

        syncnet, stats = train_syncnet(
            train_set,
            steps=cfg.train.sync_steps,
            batch_size=cfg.train.sync_batch,
            lr=cfg.train.sync_lr,
            seed=cfg.train.seed,
            progress=not t.quiet,
            log_fn=log,
        )
        save_syncnet(path, syncnet)
        if not t.quiet:
            print(
                f"lip-sync expert: held-out accuracy {stats['heldout_accuracy']:.3f} "
                f"after {stats['steps']} steps ({stats['seconds']:.0f} s) -> {path}"
            )
    barrier()
    try:
        syncnet = load_syncnet(path)
    except S3DError:
        raise
    except Exception as exc:  # any damage to the file: one line, and what to do about it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise S3DError(f"{path} cannot be loaded ({first}); delete it to train the lip-sync expert again") from None
    return freeze(syncnet.to(t.device))
