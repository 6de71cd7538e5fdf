"""Fused tri-plane sampling against the grid_sample reference."""

import itertools

import pytest
import torch

from s3d_fast.ops import reference, triplane_sample

PLANE_REDUCES = ("sum", "mean", "product", "concat")
SCALE_REDUCES = ("concat", "sum")


def make_planes(batch=2, shapes=((6, 7), (4, 5)), channels=11, dtype=torch.float32, grad=False):
    # 11 channels: one full chunk of 8 plus a ragged tail in every kernel loop.
    return [torch.randn(batch, 3, h, w, channels, dtype=dtype).requires_grad_(grad) for h, w in shapes]


def make_points(batch=2, n=64, dtype=torch.float32, spread=1.3, grad=False):
    # spread > 1 puts some points outside the box, where padding matters.
    return ((torch.rand(batch, n, 3, dtype=dtype) * 2 - 1) * spread).requires_grad_(grad)


def both(planes, points, **kw):
    return triplane_sample(planes, points, **kw), reference.triplane_sample(planes, points, **kw)


@pytest.mark.parametrize("plane_reduce,scale_reduce", list(itertools.product(PLANE_REDUCES, SCALE_REDUCES)))
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("axes", ["xy_xz_yz", "eg3d"])
def test_matches_reference_forward_and_gradients(plane_reduce, scale_reduce, align_corners, padding, axes):
    kw = dict(
        plane_reduce=plane_reduce,
        scale_reduce=scale_reduce,
        align_corners=align_corners,
        padding=padding,
        axes=axes,
    )
    planes = make_planes(dtype=torch.float64, grad=True)
    points = make_points(dtype=torch.float64, grad=True)
    fused, ref = both(planes, points, **kw)
    assert fused.shape == ref.shape
    torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-10)

    grad_out = torch.randn_like(ref)
    fused_grads = torch.autograd.grad(fused, [points, *planes], grad_out)
    ref_grads = torch.autograd.grad(ref, [points, *planes], grad_out)
    for name, a, b in zip(["points", "planes[0]", "planes[1]"], fused_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")


def test_float32_matches_reference():
    planes = make_planes(shapes=((32, 48), (16, 16), (8, 8)), channels=32, grad=True)
    points = make_points(n=500, grad=True)
    fused, ref = both(planes, points, plane_reduce="sum", scale_reduce="concat")
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(fused, [points, *planes], grad_out),
        torch.autograd.grad(ref, [points, *planes], grad_out),
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_eg3d_axes_sample_third_plane_at_z_x():
    # A plane whose value is its own u coordinate (linear ramp along W) reveals
    # which point axis drives u.
    width = 5
    ramp = torch.linspace(-1, 1, width, dtype=torch.float64).view(1, 1, width, 1).expand(1, 3, 4, width, 1)
    points = torch.tensor([[[0.1, -0.4, 0.7]]], dtype=torch.float64)
    out = triplane_sample(ramp.contiguous(), points, plane_reduce="concat", align_corners=True, axes="eg3d")
    torch.testing.assert_close(out[0, 0], torch.tensor([0.1, 0.1, 0.7], dtype=torch.float64))
    out = triplane_sample(ramp.contiguous(), points, plane_reduce="concat", align_corners=True)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.1, 0.1, -0.4], dtype=torch.float64))


def test_single_tensor_equals_one_scale_list():
    planes = make_planes(shapes=((8, 8),))
    points = make_points()
    torch.testing.assert_close(triplane_sample(planes[0], points), triplane_sample(planes, points))


def test_points_far_outside_are_padding():
    planes = make_planes(shapes=((8, 8),), channels=4)
    points = torch.tensor([[[5.0, 5.0, 5.0], [-1e30, 1e30, -3.0], [1e30, 1e30, 1e30]]]).expand(2, 3, 3).contiguous()
    zeros = triplane_sample(planes, points, padding="zeros")
    assert torch.all(zeros == 0)
    border = triplane_sample(planes, points, padding="border")
    torch.testing.assert_close(border, reference.triplane_sample(planes, points, padding="border"))


def test_empty_points():
    planes = make_planes(grad=True)
    points = make_points(n=0, grad=True)
    out = triplane_sample(planes, points)
    assert out.shape == (2, 0, 2 * 11)
    out.sum().backward()
    assert points.grad.shape == points.shape
    assert all(torch.all(p.grad == 0) for p in planes)


def test_non_contiguous_inputs():
    # EG3D stores planes as (B, 3, C, H, W): a permuted view is channels-last but not contiguous.
    eg3d_planes = torch.randn(2, 3, 11, 6, 7, requires_grad=True)
    planes = eg3d_planes.permute(0, 1, 3, 4, 2)
    points = make_points(n=50).transpose(0, 1).contiguous().transpose(0, 1)  # (2, 50, 3), strided
    assert not planes.is_contiguous() and not points.is_contiguous()
    fused, ref = both(planes, points)
    torch.testing.assert_close(fused, ref)
    fused.sum().backward()
    assert eg3d_planes.grad is not None and eg3d_planes.grad.shape == eg3d_planes.shape


def test_gradcheck_float64():
    planes = make_planes(batch=1, shapes=((3, 4), (2, 3)), channels=3, dtype=torch.float64, grad=True)
    points = make_points(batch=1, n=6, dtype=torch.float64, spread=0.9, grad=True)
    for plane_reduce in PLANE_REDUCES:
        assert torch.autograd.gradcheck(
            lambda pts, a, b, plane_reduce=plane_reduce: triplane_sample([a, b], pts, plane_reduce=plane_reduce),
            (points, *planes),
        )


def test_only_points_or_only_planes_need_grad():
    planes = make_planes(grad=False)
    points = make_points(grad=True)
    triplane_sample(planes, points).sum().backward()
    assert points.grad is not None
    planes = make_planes(grad=True)
    points = make_points(grad=False)
    triplane_sample(planes, points).sum().backward()
    assert all(p.grad is not None for p in planes)


def test_cpu_backward_is_deterministic():
    planes = make_planes(batch=1, shapes=((16, 16),), channels=32, grad=True)
    points = make_points(batch=1, n=20000, grad=True)
    grad_out = torch.randn(1, 20000, 32)
    first = torch.autograd.grad(triplane_sample(planes, points), [points, *planes], grad_out)
    for _ in range(3):
        again = torch.autograd.grad(triplane_sample(planes, points), [points, *planes], grad_out)
        for a, b in zip(first, again):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda p, x: triplane_sample("planes", x), TypeError, "planes"),
        (lambda p, x: triplane_sample([], x), ValueError, "planes"),
        (lambda p, x: triplane_sample(p, x[0]), ValueError, r"points must have shape \(B, N, 3\)"),
        (lambda p, x: triplane_sample(p, x[..., :2]), ValueError, "points"),
        (lambda p, x: triplane_sample(p, x.long()), TypeError, "points"),
        (lambda p, x: triplane_sample([p[0].double()], x), TypeError, r"planes\[0\]"),
        (lambda p, x: triplane_sample([p[0], p[1][..., :5]], x), ValueError, r"planes\[1\] has 5 channels"),
        (lambda p, x: triplane_sample([p[0][:1]], x), ValueError, "batch"),
        (lambda p, x: triplane_sample([p[0][:, :2]], x), ValueError, r"\(B, 3, H, W, C\)"),
        (lambda p, x: triplane_sample([p[0][:, :, :0]], x), ValueError, "empty"),
        (lambda p, x: triplane_sample(p, x, plane_reduce="max"), ValueError, "plane_reduce"),
        (lambda p, x: triplane_sample(p, x, scale_reduce="mean"), ValueError, "scale_reduce"),
        (lambda p, x: triplane_sample(p, x, padding="reflection"), ValueError, "padding"),
        (lambda p, x: triplane_sample(p, x, axes="zyx"), ValueError, "axes"),
        (lambda p, x: triplane_sample([p[0].to(torch.float8_e5m2)], x.to(torch.float8_e5m2)), TypeError, "float32"),
        (lambda p, x: triplane_sample([p[0].to("meta")], x), ValueError, "meta"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(make_planes(), make_points())


@pytest.mark.parametrize("plane_reduce", PLANE_REDUCES)
@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_gpu_decomposition_of_backward_matches_reference(plane_reduce, padding):
    # The CUDA launcher scatters plane gradients per (point, plane) with
    # atomics, through bodies the CPU launcher does not use for every mode;
    # this runs that decomposition on the CPU so the GPU's code is tested here.
    from aids import extension
    from s3d_fast.ops._triplane_spec import AXES, PADDINGS, SCALE_REDUCES
    from s3d_fast.ops._triplane_spec import PLANE_REDUCES as CODES

    planes = make_planes(dtype=torch.float64, grad=True)
    points = make_points(dtype=torch.float64, grad=True)
    kw = dict(plane_reduce=plane_reduce, scale_reduce="sum", padding=padding, axes="eg3d")
    ref = reference.triplane_sample(planes, points, **kw)
    grad_out = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, [points, *planes], grad_out)
    codes = (CODES.index(plane_reduce), SCALE_REDUCES.index("sum"), False, PADDINGS.index(padding), AXES.index("eg3d"))
    grad_points, grad_planes = extension.load().triplane_backward_gpu_decomposition(
        grad_out.contiguous(), [p.detach() for p in planes], points.detach(), *codes, True, True
    )
    for got, want in zip([grad_points, *grad_planes], expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (runs where a GPU is lent)")
@pytest.mark.parametrize("plane_reduce", PLANE_REDUCES)
def test_cuda_matches_cpu(plane_reduce):
    planes = make_planes(dtype=torch.float64, grad=True)
    points = make_points(dtype=torch.float64, grad=True)
    cpu = triplane_sample(planes, points, plane_reduce=plane_reduce, padding="border")
    planes_gpu = [p.detach().cuda().requires_grad_() for p in planes]
    points_gpu = points.detach().cuda().requires_grad_()
    gpu = triplane_sample(planes_gpu, points_gpu, plane_reduce=plane_reduce, padding="border")
    torch.testing.assert_close(gpu.cpu(), cpu)
    grad_out = torch.randn_like(cpu)
    for a, b in zip(
        torch.autograd.grad(gpu, [points_gpu, *planes_gpu], grad_out.cuda()),
        torch.autograd.grad(cpu, [points, *planes], grad_out),
    ):
        torch.testing.assert_close(a.cpu(), b)
