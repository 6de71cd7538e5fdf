// The hash-grid ops' CUDA backend for hashgrid_args.h: the CUDA launchers on
// the stream of a launch context (cuda_context.h in the CUDA build; the
// emulated CUDA test build runs it with host_context.h).
#pragma once

#include <ATen/ATen.h>

#include "../hashgrid_args.h"
#include "s3d/hashgrid_launchers.h"

namespace s3d_torch {

template <typename Context>
struct HashgridCudaBackend {
  using Guard = typename Context::Guard;
  static constexpr bool kZeroFilledGrads = true;  // the launcher adds into the table gradient
  template <typename T>
  static void forward(const hg::Params<T>& p, int n_dims, int n_features, const T* points, T* out) {
    hg::cuda::forward<T>(p, n_dims, n_features, points, out, Context::stream());
  }
  template <typename T>
  static void backward(const hg::Params<T>& p, int n_dims, int n_features, const T* points,
                       const T* grad_out, T* grad_points, T* grad_table,
                       const at::TensorOptions& options) {
    // torch.use_deterministic_algorithms(True): no float atomics (sorted gather).
    const bool deterministic = grad_table != nullptr &&
                               at::globalContext().deterministicAlgorithms();
    const int64_t bytes = hg::cuda::backward_workspace_bytes<T>(p, n_dims, deterministic);
    at::Tensor workspace = at::empty({bytes}, options.dtype(at::kByte));
    hg::cuda::backward<T>(p, n_dims, n_features, points, grad_out, grad_points, grad_table,
                          deterministic, workspace.data_ptr(), Context::stream());
  }
};

}  // namespace s3d_torch
