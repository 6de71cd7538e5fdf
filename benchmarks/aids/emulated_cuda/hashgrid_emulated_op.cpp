// Hash-grid ops over the emulated CUDA launchers: csrc/torch/cuda/hashgrid_op_cuda.cpp
// with host tensors and no stream.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "hashgrid_args.h"
#include "s3d/hashgrid_launchers.h"

namespace s3d_torch {
namespace {

at::Tensor hashgrid_forward_emulated(const at::Tensor& points, const at::Tensor& table,
                                     at::IntArrayRef offsets, at::ArrayRef<double> scales,
                                     int64_t interpolation) {
  check_hashgrid_inputs(points, table);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hashgrid_forward_emulated", [&] {
    auto p = make_hashgrid_params<scalar_t>(points, table, offsets, scales, interpolation);
    out = at::empty({points.size(0), p.layout.n_levels * table.size(1)}, points.options());
    hg::cuda::forward<scalar_t>(p, static_cast<int>(points.size(1)),
                                static_cast<int>(table.size(1)), points.data_ptr<scalar_t>(),
                                out.data_ptr<scalar_t>(), nullptr);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> hashgrid_backward_emulated(
    const at::Tensor& grad_out, const at::Tensor& points, const at::Tensor& table,
    at::IntArrayRef offsets, at::ArrayRef<double> scales, int64_t interpolation, bool points_grad,
    bool table_grad) {
  check_hashgrid_inputs(points, table);
  check_hashgrid_grad_out(grad_out, points, table, static_cast<int64_t>(scales.size()));
  at::Tensor grad_points = points_grad ? at::empty_like(points) : at::Tensor();
  at::Tensor grad_table = table_grad ? at::zeros_like(table) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hashgrid_backward_emulated", [&] {
    auto p = make_hashgrid_params<scalar_t>(points, table, offsets, scales, interpolation);
    // torch.use_deterministic_algorithms(True): no float atomics (sorted gather).
    const bool deterministic = table_grad && at::globalContext().deterministicAlgorithms();
    const int n_dims = static_cast<int>(points.size(1));
    const int64_t bytes = hg::cuda::backward_workspace_bytes<scalar_t>(p, n_dims, deterministic);
    at::Tensor workspace = at::empty({bytes}, points.options().dtype(at::kByte));
    hg::cuda::backward<scalar_t>(p, n_dims, static_cast<int>(table.size(1)),
                                 points.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
                                 points_grad ? grad_points.data_ptr<scalar_t>() : nullptr,
                                 table_grad ? grad_table.data_ptr<scalar_t>() : nullptr,
                                 deterministic, workspace.data_ptr(), nullptr);
  });
  return {grad_points, grad_table};
}

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast_emulated_cuda, m) {
  m.def(
      "hashgrid_forward(Tensor points, Tensor table, int[] offsets, float[] scales, "
      "int interpolation) -> Tensor");
  m.def(
      "hashgrid_backward(Tensor grad_out, Tensor points, Tensor table, int[] offsets, "
      "float[] scales, int interpolation, bool points_grad, bool table_grad) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(s3d_fast_emulated_cuda, CPU, m) {
  m.impl("hashgrid_forward", &s3d_torch::hashgrid_forward_emulated);
  m.impl("hashgrid_backward", &s3d_torch::hashgrid_backward_emulated);
}
