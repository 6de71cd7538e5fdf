// Tensor-level glue of the tri-plane ops, shared by the CPU and CUDA
// registrations (and the emulated CUDA test build): argument checks, the
// framework-free parameter block, allocation, the schemas, and the calls into
// a backend's raw-pointer launchers (`Backend` supplies them with its thread
// count or stream, and prepares fresh output buffers). The Python wrapper
// validates user input with friendly messages; these checks guard direct
// torch.ops callers.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "s3d/triplane.h"

namespace s3d_torch {

namespace tp = s3d::triplane;

inline void check_triplane_inputs(at::TensorList planes, const at::Tensor& points) {
  TORCH_CHECK(!planes.empty(), "triplane: planes must hold at least one scale");
  TORCH_CHECK(planes.size() <= static_cast<size_t>(tp::kMaxScales), "triplane: at most ",
              tp::kMaxScales, " scales");
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 3, "triplane: points must be (B, N, 3)");
  TORCH_CHECK(points.is_contiguous(), "triplane: points must be contiguous");
  TORCH_CHECK(points.scalar_type() == at::kFloat || points.scalar_type() == at::kDouble,
              "triplane: points must be float32 or float64, got ", points.scalar_type());
  for (const auto& plane : planes) {
    TORCH_CHECK(plane.dim() == 5 && plane.size(1) == 3,
                "triplane: each plane tensor must be (B, 3, H, W, C)");
    TORCH_CHECK(plane.is_contiguous(), "triplane: planes must be contiguous");
    TORCH_CHECK(plane.scalar_type() == points.scalar_type(),
                "triplane: planes and points must share a dtype");
    TORCH_CHECK(plane.device() == points.device(),
                "triplane: planes and points must be on one device");
    TORCH_CHECK(plane.size(0) == points.size(0), "triplane: batch sizes differ");
    TORCH_CHECK(plane.size(4) == planes[0].size(4), "triplane: channel counts differ");
    // Heights, widths and channels are ints in the kernels; an empty plane has no texel to read.
    TORCH_CHECK(plane.size(2) >= 1 && plane.size(3) >= 1 && plane.size(2) < (1 << 30) &&
                    plane.size(3) < (1 << 30) && plane.size(4) < (1 << 24),
                "triplane: each plane needs 1 <= H, W < 2^30 and C < 2^24, got ", plane.sizes());
  }
}

template <typename T>
tp::Params<T> make_params(at::TensorList planes, const at::Tensor& points, int64_t plane_reduce,
                          int64_t scale_reduce, bool align_corners, int64_t padding, int64_t axes) {
  TORCH_CHECK(plane_reduce >= 0 && plane_reduce <= 3, "triplane: bad plane_reduce");
  TORCH_CHECK(scale_reduce >= 0 && scale_reduce <= 1, "triplane: bad scale_reduce");
  TORCH_CHECK(padding >= 0 && padding <= 1, "triplane: bad padding");
  TORCH_CHECK(axes >= 0 && axes <= 1, "triplane: bad axes");
  tp::Params<T> p{};
  p.n_scales = static_cast<int>(planes.size());
  for (int s = 0; s < p.n_scales; ++s) {
    p.planes[s] = planes[s].data_ptr<T>();
    p.height[s] = static_cast<int>(planes[s].size(2));
    p.width[s] = static_cast<int>(planes[s].size(3));
  }
  p.batch = points.size(0);
  p.n_points = points.size(1);
  p.channels = static_cast<int>(planes[0].size(4));
  p.plane_reduce = static_cast<tp::PlaneReduce>(plane_reduce);
  p.scale_reduce = static_cast<tp::ScaleReduce>(scale_reduce);
  p.padding = static_cast<tp::Padding>(padding);
  p.axes = static_cast<tp::Axes>(axes);
  p.align_corners = align_corners;
  p.out_channels = tp::out_channels(p.plane_reduce, p.scale_reduce, p.channels, p.n_scales);
  return p;
}

// The backward's output gradient, checked alike for both devices.
inline void check_triplane_grad_out(const at::Tensor& grad_out, const at::Tensor& points,
                                    int64_t out_channels) {
  TORCH_CHECK(grad_out.is_contiguous() && grad_out.scalar_type() == points.scalar_type() &&
                  grad_out.device() == points.device(),
              "triplane: grad_out must be contiguous and match the points' dtype and device");
  TORCH_CHECK(grad_out.numel() == points.size(0) * points.size(1) * out_channels,
              "triplane: grad_out has the wrong size");
}

// Allocations shared by both devices' backward.
struct TriplaneGrads {
  at::Tensor points;
  std::vector<at::Tensor> planes;
};

// zero_planes=false leaves the plane gradients uninitialised, for launchers
// that write every element themselves.
inline TriplaneGrads allocate_triplane_grads(at::TensorList planes, const at::Tensor& points,
                                             bool points_grad, bool planes_grad, bool zero_planes) {
  TriplaneGrads grads;
  grads.points = points_grad ? at::empty_like(points) : at::Tensor();
  for (const auto& plane : planes)
    grads.planes.push_back(!planes_grad  ? at::Tensor()
                           : zero_planes ? at::zeros_like(plane)
                                         : at::empty_like(plane));
  return grads;
}

// Backend: Guard (constructed from the points' device), kZeroFilledGrads (its
// launchers add into zeroed plane gradients rather than overwrite them),
// prepare_output for each fresh buffer, and forward<T> / backward<T> over raw
// pointers.
template <typename Backend>
at::Tensor triplane_forward_impl(at::TensorList planes, const at::Tensor& points,
                                 int64_t plane_reduce, int64_t scale_reduce, bool align_corners,
                                 int64_t padding, int64_t axes) {
  check_triplane_inputs(planes, points);
  const typename Backend::Guard guard(points.device());
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "triplane_forward", [&] {
    auto p = make_params<scalar_t>(planes, points, plane_reduce, scale_reduce, align_corners,
                                   padding, axes);
    out = at::empty({points.size(0), points.size(1), p.out_channels}, points.options());
    Backend::prepare_output(out);
    Backend::template forward<scalar_t>(p, points.data_ptr<scalar_t>(), out.data_ptr<scalar_t>());
  });
  return out;
}

template <typename Backend>
std::tuple<at::Tensor, std::vector<at::Tensor>> triplane_backward_impl(
    const at::Tensor& grad_out, at::TensorList planes, const at::Tensor& points,
    int64_t plane_reduce, int64_t scale_reduce, bool align_corners, int64_t padding, int64_t axes,
    bool points_grad, bool planes_grad) {
  check_triplane_inputs(planes, points);
  const typename Backend::Guard guard(points.device());
  TriplaneGrads grads = allocate_triplane_grads(planes, points, points_grad, planes_grad,
                                                Backend::kZeroFilledGrads);
  Backend::prepare_output(grads.points);
  for (const auto& g : grads.planes) Backend::prepare_output(g);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "triplane_backward", [&] {
    auto p = make_params<scalar_t>(planes, points, plane_reduce, scale_reduce, align_corners,
                                   padding, axes);
    check_triplane_grad_out(grad_out, points, p.out_channels);
    std::vector<scalar_t*> plane_ptrs;
    for (auto& g : grads.planes)
      plane_ptrs.push_back(g.defined() ? g.data_ptr<scalar_t>() : nullptr);
    Backend::template backward<scalar_t>(p, points.data_ptr<scalar_t>(),
                                         grad_out.data_ptr<scalar_t>(),
                                         points_grad ? grads.points.data_ptr<scalar_t>() : nullptr,
                                         plane_ptrs.data(), planes_grad, points.options());
  });
  return {grads.points, grads.planes};
}

inline void define_triplane_ops(torch::Library& m) {
  m.def(
      "triplane_forward(Tensor[] planes, Tensor points, int plane_reduce, int scale_reduce, "
      "bool align_corners, int padding, int axes) -> Tensor");
  m.def(
      "triplane_backward(Tensor grad_out, Tensor[] planes, Tensor points, int plane_reduce, "
      "int scale_reduce, bool align_corners, int padding, int axes, bool points_grad, "
      "bool planes_grad) -> (Tensor, Tensor[])");
}

template <typename Backend>
void impl_triplane_ops(torch::Library& m) {
  m.impl("triplane_forward", &triplane_forward_impl<Backend>);
  m.impl("triplane_backward", &triplane_backward_impl<Backend>);
}

}  // namespace s3d_torch
