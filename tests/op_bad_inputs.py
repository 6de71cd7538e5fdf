"""Bad inputs to every fused op, as a stranger would pass them: direct
``torch.ops.s3d_fast`` calls and the Python ``s3d_fast.ops`` functions.

Each case is (op, what, call, expected): ``expected`` is the text the first line of
the error must hold (the argument it names). ``python tests/op_bad_inputs.py`` runs
every case in this one process and prints a JSON line per case, after a "start" line,
so that a crash (a segfault kills the process) still names the case that caused it;
tests/test_op_input_checks.py runs it in a subprocess. ``--table`` prints the count
per op (docs/kernels/input-checks.md).
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import torch

from s3d_fast import _ext, ops

NAN, INF = float("nan"), float("inf")


def _ext_ops():
    return _ext.load()


def _samples(n=10):
    g = torch.Generator().manual_seed(0)
    s = torch.rand(n, generator=g)
    t0 = torch.rand(n, generator=g)
    return s, t0, t0 + 0.1


def render_weight_cases(m):
    s, t0, t1 = _samples()
    off = torch.tensor([0, 4, 10])
    fw = m.render_weight_forward
    w, trans, alphas = fw(off, s, t0, t1, 0)
    bw = m.render_weight_backward
    g = torch.ones(10)
    return [
        (
            "render_weight_forward",
            "offsets past the end",
            lambda: fw(torch.tensor([0, 5, 1000]), s, t0, t1, 0),
            "offsets",
        ),
        (
            "render_weight_forward",
            "decreasing offsets",
            lambda: fw(torch.tensor([0, 6, 3, 10]), s, t0, t1, 0),
            "offsets",
        ),
        ("render_weight_forward", "first offset not 0", lambda: fw(torch.tensor([2, 6, 10]), s, t0, t1, 0), "offsets"),
        (
            "render_weight_forward",
            "negative first offset",
            lambda: fw(torch.tensor([-5, 6, 10]), s, t0, t1, 0),
            "offsets",
        ),
        (
            "render_weight_forward",
            "offsets short of the end",
            lambda: fw(torch.tensor([0, 4, 9]), s, t0, t1, 0),
            "offsets",
        ),
        ("render_weight_forward", "int32 offsets", lambda: fw(off.int(), s, t0, t1, 0), "offsets"),
        ("render_weight_forward", "2-D offsets", lambda: fw(off[None], s, t0, t1, 0), "offsets"),
        ("render_weight_forward", "empty offsets", lambda: fw(off[:0], s, t0, t1, 0), "offsets"),
        ("render_weight_forward", "int input", lambda: fw(off, s.int(), t0, t1, 1), "input"),
        ("render_weight_forward", "float16 input", lambda: fw(off, s.half(), None, None, 1), "input"),
        ("render_weight_forward", "strided input", lambda: fw(off, torch.rand(20)[::2], t0, t1, 0), "input"),
        ("render_weight_forward", "t_starts too short", lambda: fw(off, s, t0[:5], t1, 0), "t_starts"),
        ("render_weight_forward", "t_ends of another dtype", lambda: fw(off, s, t0, t1.double(), 0), "t_starts/t_ends"),
        ("render_weight_forward", "densities without t", lambda: fw(off, s, None, None, 0), "t_starts"),
        ("render_weight_forward", "input kind 7", lambda: fw(off, s, t0, t1, 7), "input kind"),
        (
            "render_weight_backward",
            "trans too short",
            lambda: bw(off, t0, t1, trans[:5], alphas, g, None, None, 0),
            "trans",
        ),
        (
            "render_weight_backward",
            "float64 trans",
            lambda: bw(off, t0, t1, trans.double(), alphas, g, None, None, 0),
            "trans",
        ),
        (
            "render_weight_backward",
            "strided trans",
            lambda: bw(off, t0, t1, torch.rand(20)[::2], alphas, g, None, None, 0),
            "trans",
        ),
        (
            "render_weight_backward",
            "grad_weights too short",
            lambda: bw(off, t0, t1, trans, alphas, g[:3], None, None, 0),
            "grad_weights",
        ),
        (
            "render_weight_backward",
            "float64 grad_trans",
            lambda: bw(off, t0, t1, trans, alphas, None, g.double(), None, 0),
            "grad_trans",
        ),
        (
            "render_weight_backward",
            "grad_alphas 2-D",
            lambda: bw(off, t0, t1, trans, alphas, None, None, g[None], 0),
            "grad_alphas",
        ),
        (
            "render_weight_backward",
            "offsets past the end",
            lambda: bw(torch.tensor([0, 999, 10]), t0, t1, trans, alphas, g, None, None, 0),
            "offsets",
        ),
        (
            "render_weight_backward",
            "int alphas",
            lambda: bw(off, t0, t1, trans, alphas.int(), g, None, None, 0),
            "input",
        ),
    ]


def composite_cases(m):
    s, t0, t1 = _samples()
    off = torch.tensor([0, 4, 10])
    v = torch.rand(10, 3)
    fw, bw = m.composite_forward, m.composite_backward
    colors, opacity, depth = fw(off, s, v, t0, t1, 0, 0.0)
    gc, go = torch.ones(2, 3), torch.ones(2)

    def back(offsets=off, colors=colors, opacity=opacity, depth=depth, gc=gc, go=go, gd=None):
        return bw(offsets, s, v, t0, t1, 0, 0.0, colors, opacity, depth, gc, go, gd, True, True)

    return [
        (
            "composite_forward",
            "offsets past the end",
            lambda: fw(torch.tensor([0, 4, 99]), s, v, t0, t1, 0, 0.0),
            "offsets",
        ),
        (
            "composite_forward",
            "decreasing offsets",
            lambda: fw(torch.tensor([0, 8, 4, 10]), s, v, t0, t1, 0, 0.0),
            "offsets",
        ),
        (
            "composite_forward",
            "first offset not 0",
            lambda: fw(torch.tensor([3, 4, 10]), s, v, t0, t1, 0, 0.0),
            "offsets",
        ),
        ("composite_forward", "values with too few rows", lambda: fw(off, s, v[:4], t0, t1, 0, 0.0), "values"),
        ("composite_forward", "float64 values", lambda: fw(off, s, v.double(), t0, t1, 0, 0.0), "values"),
        ("composite_forward", "strided values", lambda: fw(off, s, torch.rand(3, 10).t(), t0, t1, 0, 0.0), "values"),
        ("composite_forward", "negative early_stop_eps", lambda: fw(off, s, v, t0, t1, 0, -1.0), "early_stop_eps"),
        ("composite_forward", "input kind -1", lambda: fw(off, s, v, t0, t1, -1, 0.0), "input kind"),
        ("composite_backward", "colors of another ray count", lambda: back(colors=torch.rand(5, 3)), "colors"),
        ("composite_backward", "float64 opacity", lambda: back(opacity=opacity.double()), "opacity"),
        ("composite_backward", "depth too short", lambda: back(depth=depth[:1]), "depth"),
        ("composite_backward", "grad_colors of another width", lambda: back(gc=torch.ones(2, 5)), "grad_colors"),
        ("composite_backward", "grad_opacity too long", lambda: back(go=torch.ones(7)), "grad_opacity"),
        ("composite_backward", "float64 grad_depth", lambda: back(gd=torch.ones(2, dtype=torch.float64)), "grad_depth"),
        ("composite_backward", "decreasing offsets", lambda: back(offsets=torch.tensor([0, 12, 10])), "offsets"),
    ]


def _ray_offsets_error(m, indices, n_rays):
    """ray_offsets reports bad indices as error bits (1: unsorted, 2: out of range)."""
    _, error = m.ray_offsets(indices, n_rays)
    if error:
        raise ValueError(f"ray_indices: error bits {error}")
    return error


def ray_offsets_cases(m):
    return [
        ("ray_offsets", "a negative index", lambda: _ray_offsets_error(m, torch.tensor([-5, 2, 3]), 4), "error bits 3"),
        (
            "ray_offsets",
            "a large negative index",
            lambda: _ray_offsets_error(m, torch.tensor([0, -(2**40), 3]), 4),
            "error bits 3",
        ),
        (
            "ray_offsets",
            "an index >= n_rays",
            lambda: _ray_offsets_error(m, torch.tensor([0, 1, 9]), 4),
            "error bits 2",
        ),
        ("ray_offsets", "unsorted indices", lambda: _ray_offsets_error(m, torch.tensor([2, 1, 3]), 4), "error bits 1"),
        ("ray_offsets", "float indices", lambda: m.ray_offsets(torch.rand(3), 4), "ray_indices"),
        ("ray_offsets", "negative n_rays", lambda: m.ray_offsets(torch.tensor([0, 1]), -3), "n_rays"),
    ]


def triplane_cases(m):
    plane = torch.rand(1, 3, 4, 5, 2)
    pts = torch.rand(1, 6, 3) * 2 - 1
    fw, bw = m.triplane_forward, m.triplane_backward
    g = torch.ones(1, 6, 2)
    return [
        ("triplane_forward", "no planes", lambda: fw([], pts, 0, 0, False, 0, 0), "planes"),
        ("triplane_forward", "a plane of height 0", lambda: fw([plane[:, :, :0]], pts, 0, 0, False, 0, 0), "H, W"),
        (
            "triplane_forward",
            "a plane of width 0",
            lambda: fw([plane[:, :, :, :0].contiguous()], pts, 0, 0, False, 0, 0),
            "H, W",
        ),
        (
            "triplane_forward",
            "points (B, N, 2)",
            lambda: fw([plane], pts[..., :2].contiguous(), 0, 0, False, 0, 0),
            "points",
        ),
        ("triplane_forward", "int points", lambda: fw([plane.int()], pts.int(), 0, 0, False, 0, 0), "points"),
        (
            "triplane_forward",
            "float64 plane, float32 points",
            lambda: fw([plane.double()], pts, 0, 0, False, 0, 0),
            "dtype",
        ),
        (
            "triplane_forward",
            "batch sizes differ",
            lambda: fw([plane], torch.rand(2, 6, 3), 0, 0, False, 0, 0),
            "batch",
        ),
        (
            "triplane_forward",
            "strided points",
            lambda: fw([plane], torch.rand(1, 3, 6).transpose(1, 2), 0, 0, False, 0, 0),
            "points",
        ),
        (
            "triplane_forward",
            "channel counts differ",
            lambda: fw([plane, torch.rand(1, 3, 4, 5, 3)], pts, 0, 0, False, 0, 0),
            "channel",
        ),
        ("triplane_forward", "nine scales", lambda: fw([plane] * 9, pts, 0, 0, False, 0, 0), "scales"),
        ("triplane_forward", "plane_reduce code 9", lambda: fw([plane], pts, 9, 0, False, 0, 0), "plane_reduce"),
        ("triplane_forward", "padding code -1", lambda: fw([plane], pts, 0, 0, False, -1, 0), "padding"),
        (
            "triplane_backward",
            "grad_out too small",
            lambda: bw(g[:, :3].contiguous(), [plane], pts, 0, 0, False, 0, 0, True, True),
            "grad_out",
        ),
        (
            "triplane_backward",
            "float64 grad_out",
            lambda: bw(g.double(), [plane], pts, 0, 0, False, 0, 0, True, True),
            "grad_out",
        ),
        (
            "triplane_backward",
            "strided grad_out",
            lambda: bw(torch.ones(1, 2, 6).transpose(1, 2), [plane], pts, 0, 0, False, 0, 0, True, True),
            "grad_out",
        ),
    ]


def hashgrid_cases(m):
    table = torch.rand(64, 2)
    pts = torch.rand(5, 3)
    fw, bw = m.hashgrid_forward, m.hashgrid_backward
    offs, scales = [0, 32, 64], [3.0, 7.0]
    return [
        ("hashgrid_forward", "offsets past the table", lambda: fw(pts, table, [0, 32, 99], scales, 0), "offsets"),
        ("hashgrid_forward", "offsets not from 0", lambda: fw(pts, table, [8, 32, 64], scales, 0), "offsets"),
        ("hashgrid_forward", "an empty level", lambda: fw(pts, table, [0, 64, 64], scales, 0), "entries"),
        (
            "hashgrid_forward",
            "decreasing offsets",
            lambda: fw(pts, table, [0, 40, 30, 64], [1.0, 2.0, 3.0], 0),
            "entries",
        ),
        ("hashgrid_forward", "one offset too few", lambda: fw(pts, table, [0, 64], scales, 0), "offsets"),
        ("hashgrid_forward", "no levels", lambda: fw(pts, table, [0], [], 0), "levels"),
        ("hashgrid_forward", "33 levels", lambda: fw(pts, table, list(range(0, 34)), [1.0] * 33, 0), "levels"),
        ("hashgrid_forward", "a negative scale", lambda: fw(pts, table, offs, [3.0, -1.0], 0), "scale"),
        ("hashgrid_forward", "a NaN scale", lambda: fw(pts, table, offs, [NAN, 7.0], 0), "scale"),
        ("hashgrid_forward", "a scale of 1e10", lambda: fw(pts, table, offs, [3.0, 1e10], 0), "scale"),
        ("hashgrid_forward", "3 features", lambda: fw(pts, torch.rand(64, 3), offs, scales, 0), "F must"),
        ("hashgrid_forward", "points (N, 4)", lambda: fw(torch.rand(5, 4), table, offs, scales, 0), "points"),
        ("hashgrid_forward", "int points", lambda: fw(pts.int(), table.int(), offs, scales, 0), "points"),
        ("hashgrid_forward", "dtypes differ", lambda: fw(pts.double(), table, offs, scales, 0), "dtype"),
        ("hashgrid_forward", "interpolation 5", lambda: fw(pts, table, offs, scales, 5), "interpolation"),
        (
            "hashgrid_backward",
            "grad_out (N, 3)",
            lambda: bw(torch.ones(5, 3), pts, table, offs, scales, 0, True, True),
            "grad_out",
        ),
        (
            "hashgrid_backward",
            "float64 grad_out",
            lambda: bw(torch.ones(5, 4, dtype=torch.float64), pts, table, offs, scales, 0, True, True),
            "grad_out",
        ),
        (
            "hashgrid_backward",
            "strided grad_out",
            lambda: bw(torch.ones(4, 5).t(), pts, table, offs, scales, 0, True, True),
            "grad_out",
        ),
    ]


def mlp_cases(m):
    x = torch.rand(5, 6)
    ws = [torch.rand(16, 6), torch.rand(16, 16), torch.rand(3, 16)]
    fw, bw = m.mlp_forward, m.mlp_backward
    out, hidden = fw(x, ws, 0, 1, 0)
    g = torch.ones(5, 3)
    return [
        ("mlp_forward", "no weights", lambda: fw(x, [], 0, 1, 0), "weight matrices"),
        ("mlp_forward", "10 weights", lambda: fw(x, [ws[0]] + [ws[1]] * 8 + [ws[2]], 0, 1, 0), "weight matrices"),
        ("mlp_forward", "x (N,)", lambda: fw(x[:, 0].contiguous(), ws, 0, 1, 0), "x must"),
        ("mlp_forward", "strided x", lambda: fw(torch.rand(6, 5).t(), ws, 0, 1, 0), "x must"),
        ("mlp_forward", "int x", lambda: fw(x.int(), ws, 0, 1, 0), "x must"),
        ("mlp_forward", "float64 weight", lambda: fw(x, [ws[0].double(), *ws[1:]], 0, 1, 0), "weight 0"),
        ("mlp_forward", "first weight too narrow", lambda: fw(x, ws, 1, 1, 0), "weight 0"),
        ("mlp_forward", "negative in_ones", lambda: fw(x, ws, -1, 1, 0), "in_ones"),
        ("mlp_forward", "hidden weight (16, 8)", lambda: fw(x, [ws[0], ws[1][:, :8], ws[2]], 0, 1, 0), "weight 1"),
        ("mlp_forward", "hidden weight (8, 16)", lambda: fw(x, [ws[0], ws[1][:8], ws[2]], 0, 1, 0), "weight 1"),
        ("mlp_forward", "width 12", lambda: fw(x, [torch.rand(12, 6), torch.rand(3, 12)], 0, 1, 0), "hidden width"),
        ("mlp_forward", "activation 6", lambda: fw(x, ws, 0, 6, 0), "activation"),
        ("mlp_forward", "output activation -1", lambda: fw(x, ws, 0, 1, -1), "activation"),
        (
            "mlp_backward",
            "grad_out (N, 2)",
            lambda: bw(torch.ones(5, 2), x, ws, hidden, out, 0, 1, 0, True, True),
            "grad_out",
        ),
        (
            "mlp_backward",
            "strided grad_out",
            lambda: bw(torch.ones(3, 5).t(), x, ws, hidden, out, 0, 1, 0, True, True),
            "grad_out",
        ),
        ("mlp_backward", "float64 out", lambda: bw(g, x, ws, hidden, out.double(), 0, 1, 0, True, True), "out"),
        (
            "mlp_backward",
            "hidden of 4 rows",
            lambda: bw(g, x, ws, hidden[:, :4].contiguous(), out, 0, 1, 0, True, True),
            "hidden",
        ),
        ("mlp_backward", "hidden of one layer", lambda: bw(g, x, ws, hidden[:1], out, 0, 1, 0, True, True), "hidden"),
    ]


def occgrid_cases(m):
    bits = torch.full((2, 1, 8), 255, dtype=torch.uint8)  # 4^3 cells
    o = torch.tensor([[0.0, 0.0, -2.0]]).repeat(3, 1)
    d = torch.tensor([[0.0, 0.0, 1.0]]).repeat(3, 1)
    near, far = torch.zeros(3), torch.full((3,), 4.0)
    c, h = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]

    def march(bits=bits, res=(4, 4, 4), center=c, half=h, gi=None, step=0.1, cone=0.0, block=None):
        return m.occgrid_march(bits, block, list(res), center, half, o, d, gi, near, far, step, cone)

    return [
        ("occgrid_march", "a resolution of 0", lambda: march(res=(4, 0, 4)), "res"),
        ("occgrid_march", "a negative resolution", lambda: march(res=(4, -4, 4)), "res"),
        ("occgrid_march", "two negative resolutions", lambda: march(res=(-4, -4, 4)), "res"),
        ("occgrid_march", "a resolution of 2^40", lambda: march(res=(2**40, 1, 1)), "res"),
        ("occgrid_march", "two resolution entries", lambda: march(res=(4, 4)), "res"),
        ("occgrid_march", "a bitfield too small", lambda: march(res=(8, 8, 8)), "bitfield"),
        ("occgrid_march", "no grid", lambda: march(bits=bits[:0]), "grid"),
        ("occgrid_march", "17 levels", lambda: march(bits=torch.zeros(1, 17, 8, dtype=torch.uint8)), "levels"),
        ("occgrid_march", "int32 bits", lambda: march(bits=bits.int()), "bits"),
        ("occgrid_march", "grid index = n_grids", lambda: march(gi=torch.tensor([0, 2, 1])), "grid_indices"),
        ("occgrid_march", "a negative grid index", lambda: march(gi=torch.tensor([0, -1, 1])), "grid_indices"),
        (
            "occgrid_march",
            "int32 grid indices",
            lambda: march(gi=torch.tensor([0, 1, 1], dtype=torch.int32)),
            "grid_indices",
        ),
        ("occgrid_march", "a step of 0", lambda: march(step=0.0), "step"),
        ("occgrid_march", "a NaN step", lambda: march(step=NAN), "step"),
        ("occgrid_march", "a step of 1e-12", lambda: march(step=1e-12), "step"),
        ("occgrid_march", "a NaN cone angle", lambda: march(cone=NAN), "cone_angle"),
        ("occgrid_march", "a negative cone angle", lambda: march(cone=-1.0), "cone_angle"),
        ("occgrid_march", "a half extent of 0", lambda: march(half=[1.0, 0.0, 1.0]), "half"),
        ("occgrid_march", "an infinite centre", lambda: march(center=[INF, 0.0, 0.0]), "center"),
        (
            "occgrid_march",
            "block bits too small",
            lambda: march(
                res=(16, 16, 16),
                bits=torch.zeros(2, 1, 512, dtype=torch.uint8),
                block=torch.zeros(2, 1, 0, dtype=torch.uint8),
            ),
            "block_bits",
        ),
    ]


def python_op_cases():
    s, t0, t1 = _samples()
    ri = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    v = torch.rand(10, 3)
    rw = ops.render_weight_from_density
    bits = torch.full((1, 1, 8), 255, dtype=torch.uint8)
    o = torch.tensor([[0.0, 0.0, -2.0]])
    d = torch.tensor([[0.0, 0.0, 1.0]])
    near, far = torch.zeros(1), torch.full((1,), 4.0)
    aabb = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]

    def march(bits=bits, res=(4, 4, 4), aabb=aabb, step=0.1, cone=0.0, gi=None, block=None):
        return ops.occgrid_march(bits, res, aabb, o, d, near, far, step, cone, gi, block)

    plane = torch.rand(1, 3, 4, 5, 2)
    pts = torch.rand(1, 6, 3)
    hg = {"n_levels": 2, "log2_hashmap_size": 6, "base_resolution": 2}
    params = torch.rand(ops.HashGridConfig(**hg).layout(3).n_params)
    return [
        (
            "ops.render_weight_from_density",
            "packed_info with a negative count (issue 17)",
            lambda: rw(t0, t1, s, packed_info=torch.tensor([[0, 1000], [1000, -990]])),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "packed_info not starting at 0",
            lambda: rw(t0, t1, s, packed_info=torch.tensor([[2, 4], [6, 4]])),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "packed_info with a gap",
            lambda: rw(t0, t1, s, packed_info=torch.tensor([[0, 4], [5, 5]])),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "packed_info covering 12 of 10 samples",
            lambda: rw(t0, t1, s, packed_info=torch.tensor([[0, 4], [4, 8]])),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "float packed_info",
            lambda: rw(t0, t1, s, packed_info=torch.tensor([[0.0, 4.0], [4.0, 6.0]])),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "packed_info (n, 3)",
            lambda: rw(t0, t1, s, packed_info=torch.zeros(2, 3, dtype=torch.long)),
            "packed_info",
        ),
        (
            "ops.render_weight_from_density",
            "a negative ray index",
            lambda: rw(t0, t1, s, ray_indices=ri - 1),
            "ray_indices",
        ),
        (
            "ops.render_weight_from_density",
            "a ray index >= n_rays",
            lambda: rw(t0, t1, s, ray_indices=ri, n_rays=2),
            "ray_indices",
        ),
        (
            "ops.render_weight_from_density",
            "unsorted ray indices",
            lambda: rw(t0, t1, s, ray_indices=ri.flip(0)),
            "ray_indices",
        ),
        (
            "ops.render_weight_from_density",
            "negative n_rays",
            lambda: rw(t0, t1, s, ray_indices=ri, n_rays=-1),
            "n_rays",
        ),
        (
            "ops.render_weight_from_density",
            "float ray indices",
            lambda: rw(t0, t1, s, ray_indices=ri.float()),
            "ray_indices",
        ),
        ("ops.render_weight_from_density", "t_starts too short", lambda: rw(t0[:4], t1, s, ray_indices=ri), "t_starts"),
        ("ops.render_weight_from_density", "int sigmas", lambda: rw(t0, t1, ri, ray_indices=ri), "sigmas"),
        (
            "ops.render_weight_from_alpha",
            "packed_info with a negative count",
            lambda: ops.render_weight_from_alpha(s, packed_info=torch.tensor([[0, 12], [12, -2]])),
            "packed_info",
        ),
        (
            "ops.composite",
            "packed_info with a negative count",
            lambda: ops.composite(s, v, t_starts=t0, t_ends=t1, packed_info=torch.tensor([[0, 1000], [1000, -990]])),
            "packed_info",
        ),
        (
            "ops.composite",
            "values with too few rows",
            lambda: ops.composite(s, v[:3], ri, t_starts=t0, t_ends=t1),
            "values",
        ),
        (
            "ops.composite",
            "kind 'sigma'",
            lambda: ops.composite(s, v, ri, t_starts=t0, t_ends=t1, kind="sigma"),
            "kind",
        ),
        (
            "ops.composite",
            "negative early_stop_eps",
            lambda: ops.composite(s, v, ri, t_starts=t0, t_ends=t1, early_stop_eps=-0.1),
            "early_stop_eps",
        ),
        ("ops.composite", "densities without t", lambda: ops.composite(s, v, ri), "t_starts"),
        (
            "ops.composite",
            "a ray index >= n_rays",
            lambda: ops.composite(s, v, ri, n_rays=3, t_starts=t0, t_ends=t1),
            "ray_indices",
        ),
        (
            "ops.composite",
            "float16 values with float32 inputs",
            lambda: ops.composite(s, v.half(), ri, t_starts=t0, t_ends=t1),
            "values",
        ),
        ("ops.accumulate_along_rays", "int weights", lambda: ops.accumulate_along_rays(ri, v, ri), "weights"),
        ("ops.occgrid_march", "a resolution of 0", lambda: march(res=(4, 0, 4)), "resolution"),
        ("ops.occgrid_march", "a negative resolution", lambda: march(res=(4, -4, 4)), "resolution"),
        ("ops.occgrid_march", "a resolution of 1.5", lambda: march(res=(4, 1.5, 4)), "resolution"),
        ("ops.occgrid_march", "two resolution entries", lambda: march(res=(4, 4)), "resolution"),
        ("ops.occgrid_march", "a bitfield too small", lambda: march(res=(8, 8, 8)), "bits"),
        ("ops.occgrid_march", "a NaN in roi_aabb", lambda: march(aabb=[NAN, -1, -1, 1, 1, 1]), "roi_aabb"),
        ("ops.occgrid_march", "roi_aabb min > max", lambda: march(aabb=[1, -1, -1, -1, 1, 1]), "roi_aabb"),
        ("ops.occgrid_march", "roi_aabb of 5 numbers", lambda: march(aabb=[-1, -1, -1, 1, 1]), "roi_aabb"),
        ("ops.occgrid_march", "a step of 0", lambda: march(step=0.0), "render_step_size"),
        ("ops.occgrid_march", "an infinite step", lambda: march(step=INF), "render_step_size"),
        ("ops.occgrid_march", "a NaN cone angle", lambda: march(cone=NAN), "cone_angle"),
        ("ops.occgrid_march", "grid index = n_grids", lambda: march(gi=torch.tensor([1])), "grid_indices"),
        (
            "ops.occgrid_march",
            "block_bits of another grid",
            lambda: march(block=torch.zeros(2, 1, 1, dtype=torch.uint8)),
            "block_bits",
        ),
        ("ops.occgrid_march", "no grid", lambda: march(bits=bits[:0]), "bits"),
        ("ops.triplane_sample", "a plane of height 0", lambda: ops.triplane_sample(plane[:, :, :0], pts), "planes[0]"),
        (
            "ops.triplane_sample",
            "planes float64, points float32",
            lambda: ops.triplane_sample(plane.double(), pts),
            "planes[0]",
        ),
        ("ops.triplane_sample", "int points", lambda: ops.triplane_sample(plane, pts.int()), "points"),
        ("ops.mlp", "a weight of another dtype", lambda: ops.mlp(pts[0], [torch.rand(16, 3).double()]), "weights[0]"),
        ("ops.mlp", "a hidden width of 20", lambda: ops.mlp(pts[0], [torch.rand(20, 3), torch.rand(2, 20)]), "width"),
        ("ops.mlp", "activation 'gelu'", lambda: ops.mlp(pts[0], [torch.rand(2, 3)], activation="gelu"), "activation"),
        (
            "ops.triplane_sample",
            "padding 'reflection'",
            lambda: ops.triplane_sample(plane, pts, padding="reflection"),
            "padding",
        ),
        (
            "ops.triplane_sample",
            "bfloat16 points, float32 planes",
            lambda: ops.triplane_sample(plane, pts.bfloat16()),
            "planes[0]",
        ),
        ("ops.hashgrid_encode", "int x", lambda: ops.hashgrid_encode(pts[0].int(), params, **hg), "x must"),
        ("ops.hashgrid_encode", "x (N, 4)", lambda: ops.hashgrid_encode(torch.rand(5, 4), params, **hg), "x must"),
        ("ops.hashgrid_encode", "params too short", lambda: ops.hashgrid_encode(pts[0], params[:-1], **hg), "params"),
        (
            "ops.hashgrid_encode",
            "float16 x, float32 params",
            lambda: ops.hashgrid_encode(pts[0].half(), params, **hg),
            "params",
        ),
    ]


def all_cases():
    m = _ext_ops()
    return (
        render_weight_cases(m)
        + composite_cases(m)
        + ray_offsets_cases(m)
        + triplane_cases(m)
        + hashgrid_cases(m)
        + mlp_cases(m)
        + occgrid_cases(m)
        + python_op_cases()
    )


def run() -> None:
    for op, what, call, expected in all_cases():
        print(json.dumps({"start": f"{op}: {what}"}), flush=True)
        record = {"op": op, "what": what, "expected": expected}
        try:
            call()
            record["outcome"] = "returned"
        except (RuntimeError, ValueError, TypeError) as e:
            record.update(outcome="error", type=type(e).__name__, message=str(e).splitlines()[0])
        print(json.dumps(record), flush=True)


def table() -> None:
    counts = Counter(op for op, *_ in all_cases())
    print("| op | bad inputs tried |\n| --- | --- |")
    for op, n in counts.items():
        print(f"| `{op}` | {n} |")
    print(f"| total | {sum(counts.values())} |")


if __name__ == "__main__":
    table() if "--table" in sys.argv else run()
