"""The CUDA kernels against the CPU ones (same bodies); runs where a GPU is present."""

import pytest
import torch

from s3d_fast import ops
from s3d_fast.nn import OccupancyGrid

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_composite_and_weights_match_cpu():
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 30, (500,), generator=g)
    ray_indices = torch.repeat_interleave(torch.arange(500), counts)
    n = int(counts.sum())
    t0 = torch.rand(n, generator=g, dtype=torch.float64)
    t1 = t0 + 0.01
    sig = (torch.rand(n, generator=g, dtype=torch.float64) * 20).requires_grad_(True)
    val = torch.rand(n, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    outs = {}
    for dev in ("cpu", "cuda"):
        s, v = sig.detach().to(dev).requires_grad_(True), val.detach().to(dev).requires_grad_(True)
        args = (ray_indices.to(dev), 500, t0.to(dev), t1.to(dev))
        c, o, d = ops.composite(s, v, *args, early_stop_eps=1e-3)
        w, tr, a = ops.render_weight_from_density(args[2], args[3], s, ray_indices=args[0], n_rays=500)
        grads = torch.autograd.grad(c.sum() + o.sum() + d.sum() + w.sum(), [s, v])
        outs[dev] = [x.cpu() for x in (c, o, d, w, tr, a, *grads)]
    for a, b in zip(outs["cpu"], outs["cuda"]):
        torch.testing.assert_close(a, b)


def test_sampling_matches_cpu():
    grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], 32, levels=2, n_grids=2)
    grid.from_density(lambda x, gi: (x.norm(dim=-1) - 0.5 - 0.1 * gi).abs() < 0.2, threshold=0.5)
    o = torch.randn(300, 3, generator=torch.Generator().manual_seed(1))
    o = o / o.norm(dim=-1, keepdim=True) * 3
    d = -o / o.norm(dim=-1, keepdim=True)
    gi = torch.arange(300) % 2
    cpu = grid.sampling(o, d, render_step_size=0.01, grid_indices=gi)
    grid_cuda = grid.to("cuda")
    gpu = grid_cuda.sampling(o.cuda(), d.cuda(), render_step_size=0.01, grid_indices=gi.cuda())
    assert torch.equal(cpu[0], gpu[0].cpu())
    torch.testing.assert_close(cpu[1], gpu[1].cpu())
