// Tri-plane ops over the emulated CUDA launchers: csrc/torch/cuda/triplane_op_cuda.cpp
// with host tensors and no stream.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "s3d/triplane_launchers.h"
#include "triplane_args.h"

namespace s3d_torch {
namespace {

at::Tensor triplane_forward_emulated(at::TensorList planes, const at::Tensor& points,
                                     int64_t plane_reduce, int64_t scale_reduce, bool align_corners,
                                     int64_t padding, int64_t axes) {
  check_triplane_inputs(planes, points);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "triplane_forward_emulated", [&] {
    auto p = make_params<scalar_t>(planes, points, plane_reduce, scale_reduce, align_corners,
                                   padding, axes);
    out = at::empty({points.size(0), points.size(1), p.out_channels}, points.options());
    tp::cuda::forward<scalar_t>(p, points.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), nullptr);
  });
  return out;
}

std::tuple<at::Tensor, std::vector<at::Tensor>> triplane_backward_emulated(
    const at::Tensor& grad_out, at::TensorList planes, const at::Tensor& points,
    int64_t plane_reduce, int64_t scale_reduce, bool align_corners, int64_t padding, int64_t axes,
    bool points_grad, bool planes_grad) {
  check_triplane_inputs(planes, points);
  auto grads = allocate_triplane_grads(planes, points, points_grad, planes_grad);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "triplane_backward_emulated", [&] {
    auto p = make_params<scalar_t>(planes, points, plane_reduce, scale_reduce, align_corners,
                                   padding, axes);
    check_triplane_grad_out(grad_out, points, p.out_channels);
    std::vector<scalar_t*> plane_ptrs;
    for (auto& g : grads.planes)
      plane_ptrs.push_back(g.defined() ? g.data_ptr<scalar_t>() : nullptr);
    // torch.use_deterministic_algorithms(True): no float atomics (sorted gather).
    const bool deterministic = planes_grad && at::globalContext().deterministicAlgorithms();
    const int64_t bytes = tp::cuda::backward_workspace_bytes<scalar_t>(p, deterministic);
    at::Tensor workspace = at::empty({bytes}, points.options().dtype(at::kByte));
    tp::cuda::backward<scalar_t>(p, points.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
                                 points_grad ? grads.points.data_ptr<scalar_t>() : nullptr,
                                 plane_ptrs.data(), deterministic, workspace.data_ptr(), nullptr);
  });
  return {grads.points, grads.planes};
}

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast_emulated_cuda, m) {
  m.def(
      "triplane_forward(Tensor[] planes, Tensor points, int plane_reduce, int scale_reduce, "
      "bool align_corners, int padding, int axes) -> Tensor");
  m.def(
      "triplane_backward(Tensor grad_out, Tensor[] planes, Tensor points, int plane_reduce, "
      "int scale_reduce, bool align_corners, int padding, int axes, bool points_grad, "
      "bool planes_grad) -> (Tensor, Tensor[])");
}

TORCH_LIBRARY_IMPL(s3d_fast_emulated_cuda, CPU, m) {
  m.impl("triplane_forward", &s3d_torch::triplane_forward_emulated);
  m.impl("triplane_backward", &s3d_torch::triplane_backward_emulated);
}
