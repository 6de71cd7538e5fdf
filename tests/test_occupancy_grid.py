"""Occupancy-grid marching against the dense masked reference, and the grid's updates."""

import pytest
import torch

from s3d_fast import ops
from s3d_fast.nn import OccupancyGrid
from s3d_fast.ops import reference
from s3d_fast.ops.occupancy_grid import block_bits_of

AABB = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def shell(x, g=None, r=0.6, width=0.15):
    """A head-like shell of density around radius r (grid g: a shifted copy)."""
    if g is not None:
        x = x - 0.2 * g[:, None].to(x.dtype)
    return torch.exp(-(((x.norm(dim=-1) - r) / width) ** 2)) * 50


def make_rays(n=300, seed=0, dtype=torch.float32, radius=3.0):
    gen = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=gen, dtype=dtype)
    o = o / o.norm(dim=-1, keepdim=True) * radius
    d = -o + torch.randn(n, 3, generator=gen, dtype=dtype) * 0.6
    d = d / d.norm(dim=-1, keepdim=True)
    # A few special rays: axis-parallel, starting inside, missing the box.
    o[0], d[0] = torch.tensor([-3.0, 0.1, 0.2]), torch.tensor([1.0, 0.0, 0.0])
    o[1], d[1] = torch.tensor([0.05, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    o[2], d[2] = torch.tensor([0.0, 3.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    return o.to(dtype), d.to(dtype)


def make_grid(resolution=32, levels=1, n_grids=1, dilate=1, width=0.15):
    grid = OccupancyGrid(AABB, resolution, levels=levels, n_grids=n_grids)
    return grid.from_density(lambda x, g: shell(x, g, width=width), threshold=1e-2, dilate=dilate)


def bounds(n, near=0.0, far=1e10, dtype=torch.float32):
    return torch.full((n,), near, dtype=dtype), torch.full((n,), far, dtype=dtype)


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("cone_angle", [0.0, 0.02])
@pytest.mark.parametrize("blocks", [False, True])
def test_fused_marcher_matches_dense_reference(levels, cone_angle, blocks):
    grid = make_grid(levels=levels)
    o, d = make_rays()
    near, far = bounds(len(o), near=0.5, far=4.5)
    block_bits = grid.block_bits if blocks else None
    fused = ops.occgrid_march(
        grid.bits, grid.resolution, AABB, o, d, near, far, 0.01, cone_angle, block_bits=block_bits
    )
    ref = reference.occgrid_march(grid.binaries, AABB, o, d, near, far, 0.01, cone_angle)
    assert fused[0].numel() > 1000
    assert torch.equal(fused[0], ref[0]) and torch.equal(fused[3], ref[3])
    torch.testing.assert_close(fused[1], ref[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(fused[2], ref[2], rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cone_angle", [0.0, 1 / 256, 0.05])
def test_skipping_keeps_exactly_the_step_by_step_samples(dtype, cone_angle):
    # res 24 with 3 levels: the finer boxes' faces cut through coarse 8^3
    # blocks and cells, where an empty coarse region must end at the finer box.
    # near = 0 puts a long empty stretch before the box; with cone_angle > 0
    # the lattice is the recurrence t += clamp(t * cone_angle, step, 1e10),
    # which the reference replays step by step and the fused walk replays
    # without lookups across empty regions: same samples, same bits.
    grid = make_grid(resolution=24, levels=3, n_grids=2, dilate=0)
    o, d = make_rays(n=600, seed=8, dtype=dtype)
    gi = torch.arange(600) % 2
    near, far = bounds(len(o), near=0.0, far=7.0, dtype=dtype)
    fused = ops.occgrid_march(
        grid.bits,
        grid.resolution,
        AABB,
        o,
        d,
        near,
        far,
        0.013,
        cone_angle,
        grid_indices=gi,
        block_bits=grid.block_bits,
    )
    ref = reference.occgrid_march(grid.binaries, AABB, o, d, near, far, 0.013, cone_angle, grid_indices=gi)
    assert fused[0].numel() > 1000
    for a, b in zip(fused, ref):
        assert torch.equal(a, b)


def test_samples_lie_in_occupied_cells_within_bounds_sorted_and_step_consistent():
    grid = make_grid(resolution=24, levels=2, n_grids=2, dilate=0)
    o, d = make_rays(n=400, seed=1, dtype=torch.float64)
    gi = torch.arange(400) % 2
    near, far = 1.0, 4.0
    step = 0.02
    ray_indices, t0, t1 = grid.sampling(o, d, near_plane=near, far_plane=far, render_step_size=step, grid_indices=gi)
    assert ray_indices.numel() > 500
    mid = (t0 + t1) / 2
    x = o[ray_indices] + mid[:, None] * d[ray_indices]
    assert bool(reference.grid_occupied(grid.binaries, AABB, x, gi[ray_indices]).all())
    assert bool((t0 >= near).all()) and bool((mid < far).all())
    assert bool((x.abs() <= 2.0 + 1e-9).all())  # inside the coarsest level's box
    assert bool((ray_indices[1:] >= ray_indices[:-1]).all())
    same = ray_indices[1:] == ray_indices[:-1]
    assert bool((t0[1:][same] >= t1[:-1][same] - 1e-12).all())
    torch.testing.assert_close(t1 - t0, torch.full_like(t0, step))
    k = (t0 - near) / step  # every sample sits on its ray's step lattice
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-6)


def test_multi_grid_batch_matches_each_grid_alone():
    grid = make_grid(n_grids=3)
    o, d = make_rays(n=240, seed=2)
    gi = torch.randint(0, 3, (240,), generator=torch.Generator().manual_seed(3))
    batched = grid.sampling(o, d, render_step_size=0.01, grid_indices=gi, early_stop_eps=0.0)
    for g in range(3):
        alone = OccupancyGrid(AABB, 32, n_grids=1)
        alone.set_binaries(grid.binaries[g : g + 1])
        rays = (gi == g).nonzero(as_tuple=True)[0]
        ri, t0, t1 = alone.sampling(o[rays], d[rays], render_step_size=0.01)
        sel = gi[batched[0]] == g
        assert torch.equal(rays[ri], batched[0][sel])
        assert torch.equal(t0, batched[1][sel]) and torch.equal(t1, batched[2][sel])


def test_rendering_from_grid_samples_matches_dense_rendering():
    grid = make_grid(resolution=64, dilate=1, width=0.06)
    o, d = make_rays(n=256, seed=4, dtype=torch.float64)
    step = 0.005
    near, far = bounds(len(o), near=1.0, far=5.0, dtype=torch.float64)
    ri, t0, t1 = grid.sampling(o, d, near_plane=1.0, far_plane=5.0, render_step_size=step, early_stop_eps=0.0)
    empty = torch.ones(1, 1, 64, 64, 64, dtype=torch.bool)
    dense = reference.occgrid_march(empty, AABB, o, d, near, far, step)
    assert ri.numel() < 0.5 * dense[0].numel()  # the grid skipped the empty space

    def render(ri, t0, t1):
        x = o[ri] + ((t0 + t1) / 2)[:, None] * d[ri]
        colors = torch.sigmoid(x * 3)
        return ops.composite(shell(x, width=0.06), colors, ri, len(o), t0, t1)

    ours, ref = render(ri, t0, t1), render(*dense[:3])
    # Only cells whose centre density is below 1e-2 (after a 1-cell dilation) are dropped.
    for a, b in zip(ours[:2], ref[:2]):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3)


def test_early_stop_and_alpha_threshold_follow_nerfacc():
    grid = make_grid()
    o, d = make_rays(n=200, seed=5)
    step = 0.01

    def sigma_fn(t0, t1, ri):
        return shell(o[ri] + ((t0 + t1) / 2)[:, None] * d[ri])

    kw = dict(render_step_size=step)
    all_ri, all_t0, all_t1 = grid.sampling(o, d, early_stop_eps=0.0, **kw)
    ri, t0, t1 = grid.sampling(o, d, sigma_fn=sigma_fn, early_stop_eps=1e-2, alpha_thre=1e-3, **kw)
    alphas = 1 - torch.exp(-sigma_fn(all_t0, all_t1, all_ri) * (all_t1 - all_t0))
    _, trans = reference.render_weight_from_alpha(alphas, ray_indices=all_ri, n_rays=len(o))
    alpha_thre = min(1e-3, grid.occs.mean().item())
    keep = (trans >= 1e-2) & (alphas >= alpha_thre)
    assert 0 < int(keep.sum()) < all_ri.numel()
    assert torch.equal(ri, all_ri[keep]) and torch.equal(t0, all_t0[keep]) and torch.equal(t1, all_t1[keep])


def test_alpha_threshold_is_capped_by_each_rays_own_grid():
    # Grid 0 holds a dense shell (mean occupancy far above alpha_thre), grid 1
    # the same cells with faint occupancy values (mean far below): nerfacc
    # caps alpha_thre at the mean occupancy, so grid 1's rays keep their faint
    # samples while grid 0's drop them, exactly as when each grid runs alone.
    grid = make_grid(n_grids=2)
    grid.occs[1] *= 1e-5
    means = grid.occs.mean(1)
    alpha_thre = 1e-2
    assert means[0] > alpha_thre > 10 * means[1]
    o, d = make_rays(n=300, seed=9)
    gi = torch.arange(300) % 2
    step = 0.01

    def sigma_fn(t0, t1, ri):  # alphas from ~0 to ~0.05 across the shell
        return shell(o[ri] + ((t0 + t1) / 2)[:, None] * d[ri]) * 0.1

    kw = dict(render_step_size=step, early_stop_eps=0.0)
    batched = grid.sampling(o, d, sigma_fn=sigma_fn, alpha_thre=alpha_thre, grid_indices=gi, **kw)
    all_ri, all_t0, all_t1 = grid.sampling(o, d, grid_indices=gi, **kw)
    alphas = 1 - torch.exp(-sigma_fn(all_t0, all_t1, all_ri) * (all_t1 - all_t0))
    thre = torch.clamp(means, max=alpha_thre)[gi[all_ri]]
    keep = alphas >= thre
    assert torch.equal(batched[0], all_ri[keep]) and torch.equal(batched[1], all_t0[keep])
    on_1 = gi[all_ri] == 1
    # The threshold mattered on both grids, differently.
    assert 0 < int((keep & ~on_1).sum()) < int((~on_1).sum())
    assert int((keep & on_1).sum()) > int(((alphas >= alpha_thre) & on_1).sum())
    for g in range(2):
        alone = OccupancyGrid(AABB, 32, n_grids=1)
        alone.occs.copy_(grid.occs[g : g + 1])
        alone.set_binaries(grid.binaries[g : g + 1])
        rays = (gi == g).nonzero(as_tuple=True)[0]
        o_g, d_g = o[rays], d[rays]

        def sigma_g(t0, t1, ri, o_g=o_g, d_g=d_g):
            return shell(o_g[ri] + ((t0 + t1) / 2)[:, None] * d_g[ri]) * 0.1

        ri, t0, _ = alone.sampling(o_g, d_g, sigma_fn=sigma_g, alpha_thre=alpha_thre, **kw)
        sel = gi[batched[0]] == g
        assert torch.equal(rays[ri], batched[0][sel]) and torch.equal(t0, batched[1][sel])


def test_update_every_n_steps_reproduces_the_ema_rule():
    torch.manual_seed(0)
    res = 8
    grid = OccupancyGrid(AABB, res, levels=1, n_grids=2).train()

    def cell_of(x):
        return torch.clamp(torch.floor((x + 1) / 2 * res), 0, res - 1).long()

    def occ_a(x, g):  # constant inside each cell, so the jitter does not matter
        c = cell_of(x)
        return ((c.sum(-1) % 3) == 0).float() * 0.5 + 0.1 * g.float()

    def occ_b(x, g):
        return torch.full((x.shape[0], 1), 0.3)

    grid.update_every_n_steps(5, occ_a, n=16)  # not a multiple of n: no update
    assert bool((grid.occs == 0).all())
    grid.update_every_n_steps(0, occ_a, occ_thre=0.2, warmup_steps=10, n=16)
    idx = torch.arange(res**3)
    centres = (torch.stack([idx // res**2, (idx // res) % res, idx % res], -1).float() + 0.5) / res * 2 - 1
    expected = torch.stack([occ_a(centres, torch.full((res**3,), g)) for g in range(2)])
    torch.testing.assert_close(grid.occs, expected)
    thre = torch.clamp(expected.mean(1, keepdim=True), max=0.2)
    assert torch.equal(grid.binaries.reshape(2, -1), expected > thre)

    before_occs, before_bin = grid.occs.clone(), grid.binaries.reshape(2, -1).clone()
    grid.update_every_n_steps(32, occ_b, occ_thre=0.2, ema_decay=0.9, warmup_steps=10, n=16)
    updated = torch.maximum(before_occs * 0.9, torch.full_like(before_occs, 0.3))
    touched = grid.occs != before_occs
    assert bool((grid.occs == torch.where(touched, updated, before_occs)).all())
    assert bool((grid.occs[before_bin] == updated[before_bin]).all())  # occupied cells are always revisited
    n_touched = int((updated != before_occs).sum())
    assert int(touched.sum()) >= 0.2 * n_touched  # plus about a quarter drawn at random
    thre = torch.clamp(grid.occs.mean(1, keepdim=True), max=0.2)
    assert torch.equal(grid.binaries.reshape(2, -1), grid.occs > thre)
    grid.eval()
    with pytest.raises(RuntimeError, match="train"):
        grid.update_every_n_steps(0, occ_b)


def test_from_density_tensor_and_dilation():
    grid = OccupancyGrid(AABB, 8)
    density = torch.zeros(1, 1, 8, 8, 8)
    density[0, 0, 4, 4, 4] = 1.0
    grid.from_density(density, threshold=0.5)
    assert int(grid.binaries.sum()) == 1
    grid.from_density(density[0, 0], threshold=0.5, dilate=1)
    assert int(grid.binaries.sum()) == 27
    with pytest.raises(ValueError, match="density"):
        grid.from_density(torch.zeros(4, 4, 4))


def test_empty_and_missing_rays():
    grid = make_grid()
    ri, t0, t1 = grid.sampling(torch.zeros(0, 3), torch.zeros(0, 3))
    assert ri.numel() == 0 and t0.numel() == 0
    o = torch.tensor([[5.0, 5.0, 5.0], [0.0, 0.0, -3.0]])
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # both miss the box
    ri, t0, t1 = grid.sampling(o, d, render_step_size=0.01)
    assert ri.numel() == 0
    empty = OccupancyGrid(AABB, 16)
    ri, _, _ = empty.sampling(*make_rays(n=10), render_step_size=0.01)
    assert ri.numel() == 0


def test_stratified_samples_stay_in_bounds():
    grid = make_grid()
    o, d = make_rays(n=100, seed=6)
    torch.manual_seed(1)
    ri, t0, t1 = grid.sampling(o, d, near_plane=0.5, far_plane=4.0, render_step_size=0.02, stratified=True)
    assert ri.numel() > 0 and bool((t0 >= 0.5).all()) and bool(((t0 + t1) / 2 < 4.0).all())
    t_min = torch.full((100,), 2.5)
    ri, t0, _ = grid.sampling(o, d, t_min=t_min, render_step_size=0.02)
    assert bool((t0 >= 2.5).all())


def test_bad_inputs_raise_clear_errors():
    grid = make_grid(n_grids=2)
    o, d = make_rays(n=10)
    with pytest.raises(ValueError, match="grid_indices"):
        grid.sampling(o, d)
    with pytest.raises(ValueError, match="grid_indices"):
        grid.sampling(o, d, grid_indices=torch.full((10,), 2))
    with pytest.raises(ValueError, match="rays_o"):
        grid.sampling(o[:, :2], d, grid_indices=torch.zeros(10, dtype=torch.long))
    with pytest.raises(TypeError, match="float32 or float64"):
        grid.sampling(o.half(), d.half(), grid_indices=torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="render_step_size"):
        grid.sampling(o, d, grid_indices=torch.zeros(10, dtype=torch.long), render_step_size=0.0)
    with pytest.raises(ValueError, match="roi_aabb"):
        OccupancyGrid([1, 1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="binaries"):
        grid.set_binaries(torch.zeros(3, 3, 3, dtype=torch.bool))


def test_bits_roundtrip_and_blocks():
    b = torch.rand(2, 3, 5, 6, 7) > 0.5  # 210 cells: not a multiple of 8
    assert torch.equal(ops.unpack_bits(ops.pack_bits(b), (5, 6, 7)), b)
    cells = torch.zeros(1, 1, 20, 20, 20, dtype=torch.bool)
    cells[0, 0, 17, 3, 9] = True
    blocks = ops.unpack_bits(block_bits_of(cells), (3, 3, 3))
    assert blocks.sum() == 1 and bool(blocks[0, 0, 2, 0, 1])


def test_non_contiguous_rays_and_int32_grid_indices():
    grid = make_grid(n_grids=2)
    o, d = make_rays(n=64, seed=7)
    gi = (torch.arange(64) % 2).int()
    o_nc = torch.cat([o, o], 1)[:, :3]  # a strided view
    assert not o_nc.is_contiguous()
    a = grid.sampling(o_nc, d, render_step_size=0.01, grid_indices=gi)
    b = grid.sampling(o.contiguous(), d, render_step_size=0.01, grid_indices=gi.long())
    for x, y in zip(a, b):
        assert torch.equal(x, y)
