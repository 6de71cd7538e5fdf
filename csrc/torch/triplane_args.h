// Turns tensors into the framework-free parameter block of the tri-plane
// kernels. Shared by the CPU and CUDA registrations. The Python wrapper
// validates user input with friendly messages; these checks guard direct
// torch.ops callers.
#pragma once

#include <ATen/ATen.h>

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
                                             bool points_grad, bool planes_grad,
                                             bool zero_planes = true) {
  TriplaneGrads grads;
  grads.points = points_grad ? at::empty_like(points) : at::Tensor();
  for (const auto& plane : planes)
    grads.planes.push_back(!planes_grad  ? at::Tensor()
                           : zero_planes ? at::zeros_like(plane)
                                         : at::empty_like(plane));
  return grads;
}

}  // namespace s3d_torch
