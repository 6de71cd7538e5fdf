"""The fused ops and a baked identity used from several threads at once (as the
live server renders several sessions) give what sequential use gives, bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from model_helpers import tiny_config
from render_fixtures import write_dataset_frame, write_speech

from s3d_fast import ops
from s3d_fast.checkpoint import save_checkpoint
from s3d_fast.config import config_to_dict
from s3d_fast.model import S3DNeRF

THREADS = 4


def _op_work(seed: int) -> list[torch.Tensor]:
    """Every fused op forward and backward on inputs of its own seed."""
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(1, 3, 16, 16, 8, generator=g, requires_grad=True)
    points = (torch.rand(1, 2000, 3, generator=g) * 2 - 1).requires_grad_(True)
    feats = ops.triplane_sample(planes, points)
    cfg = ops.HashGridConfig(n_levels=4, log2_hashmap_size=12, base_resolution=8)
    params = torch.rand(cfg.layout(3).n_params, generator=g, requires_grad=True)
    enc = ops.hashgrid_encode(points.detach()[0] * 0.5 + 0.5, params, cfg)
    bits = ops.pack_bits(torch.rand(1, 1, 16, 16, 16, generator=g) > 0.5)
    rays_o = torch.tensor([[0.0, 0.0, -2.0]]).repeat(300, 1) + torch.rand(300, 3, generator=g) * 0.2
    rays_d = torch.tensor([0.0, 0.0, 1.0]) + torch.rand(300, 3, generator=g) * 0.3
    rays_d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    ray_indices, t0, t1, _ = ops.occgrid_march(
        bits, (16, 16, 16), [-1, -1, -1, 1, 1, 1], rays_o, rays_d, torch.zeros(300), torch.full((300,), 4.0), 0.02
    )
    n = ray_indices.numel()
    sigmas = torch.rand(n, generator=g, requires_grad=True)
    values = torch.rand(n, 3, generator=g, requires_grad=True)
    colors, opacity, depth = ops.composite(sigmas, values, ray_indices, 300, t0, t1)
    loss = feats.square().sum() + enc.sum() + colors.sum() + opacity.sum() + depth.sum()
    grads = torch.autograd.grad(loss, (planes, points, params, sigmas, values))
    return [feats.detach(), enc.detach(), ray_indices, t0, colors.detach(), *grads]


def test_ops_from_several_threads_match_sequential_calls():
    seeds = list(range(THREADS * 2))
    sequential = [_op_work(s) for s in seeds]
    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(_op_work, seeds))
    for seed, a, b in zip(seeds, sequential, threaded):
        for i, (x, y) in enumerate(zip(a, b)):
            assert torch.equal(x, y), f"seed {seed}, output {i} differs between threads and sequential calls"


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    from s3d_fast.render import Renderer

    root = tmp_path_factory.mktemp("threads")
    cfg = tiny_config()
    torch.manual_seed(0)
    model = S3DNeRF(cfg.model)
    with torch.no_grad():
        model.decoder.mlp[-1].bias[0] = 1.0  # some density, so the occupancy grid is not empty
    ckpt = save_checkpoint(
        root / "ckpt", model_state=model.state_dict(), config=config_to_dict(cfg), step=1, extra={"kind": "generator"}
    )
    image, _, _ = write_dataset_frame(root / "frame.png", size=64)
    speeches = [write_speech(root / f"speech{i}.wav", seconds=0.2 + 0.04 * i)[0] for i in range(THREADS)]
    return Renderer(str(ckpt), device="cpu").bake(image), speeches


def test_a_baked_identity_renders_from_several_threads_as_sequentially(identity):
    ident, speeches = identity
    poses = [ident.cameras(1, yaw=5.0 * i)[0] for i in range(THREADS)]

    def render(i):
        return np.stack(list(ident.render(speeches[i], pose=poses[i], batch=2)))

    sequential = [render(i) for i in range(THREADS)]
    assert all(v.std() > 0 for v in sequential)
    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(render, range(THREADS)))
    for i, (a, b) in enumerate(zip(sequential, threaded)):
        assert np.array_equal(a, b), f"session {i} differs between threads and sequential renders"
