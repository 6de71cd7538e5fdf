"""A tiny DDP training script for tests/test_distributed.py, run under torchrun.

Each rank regresses a fixed linear map with an MLP on its own data stream; DDP averages
the gradients, so every replica must end with the same weights. Each rank writes its
final weights (safetensors) and its loss history (JSON) to --out.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from s3d_fast.training.distributed import (
    all_reduce_mean,
    any_rank,
    cleanup,
    init_distributed,
    seed_everything,
    unwrap_model,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--fail-rank", type=int, default=None)
    args = parser.parse_args(argv)

    ctx = init_distributed("cpu")
    if args.fail_rank == ctx.rank:
        print(f"rank {ctx.rank}: failing on purpose", file=sys.stderr)
        return 3
    seed_everything(0, ctx.rank)  # different init per rank: DDP must broadcast rank 0's
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    if ctx.distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    w_true = torch.randn(8, 2, generator=torch.Generator().manual_seed(7))  # same on all ranks
    data = torch.Generator().manual_seed(1000 + ctx.rank)  # different data per rank

    losses = []
    for _ in range(args.steps):
        x = torch.randn(64, 8, generator=data)
        loss = torch.nn.functional.mse_loss(model(x), x @ w_true)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(all_reduce_mean({"loss": loss.item()})["loss"])

    out = Path(args.out)
    state = {k: v.detach().contiguous() for k, v in unwrap_model(model).state_dict().items()}
    save_file(state, str(out / f"rank{ctx.rank}.safetensors"))
    (out / f"rank{ctx.rank}.json").write_text(
        json.dumps(
            {
                "rank": ctx.rank,
                "world_size": ctx.world_size,
                "backend": ctx.backend,
                "is_main": ctx.is_main,
                "threads": torch.get_num_threads(),
                "omp": os.environ.get("OMP_NUM_THREADS"),
                "losses": losses,
                "any_rank": [any_rank(ctx.rank == 1), any_rank(False)],
            }
        )
    )
    cleanup(synchronize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
