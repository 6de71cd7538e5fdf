// The MLP ops' CUDA backend for mlp_args.h: the CUDA launchers on the stream of
// a launch context (cuda_context.h in the CUDA build; the emulated CUDA test
// build runs it with host_context.h).
#pragma once

#include <ATen/ATen.h>

#include "../mlp_args.h"
#include "s3d/mlp_launchers.h"

namespace s3d_torch {

template <typename Context>
struct MlpCudaBackend {
  using Guard = typename Context::Guard;
  static constexpr bool kZeroFilledGrads = true;  // the launcher adds into the weight gradients
  template <typename T>
  static void forward(const mlpk::Params<T>& p, const T* x, T* const* hidden, T* out,
                      const at::TensorOptions& options) {
    at::Tensor workspace = at::empty({mlpk::cuda::forward_workspace_bytes<T>(p)},
                                     options.dtype(at::kByte));
    mlpk::cuda::forward<T>(p, x, hidden, out, workspace.data_ptr(), Context::stream());
  }
  template <typename T>
  static void backward(const mlpk::Params<T>& p, const T* x, T* const* hidden, const T* out,
                       const T* grad_out, T* grad_x, T* const* grad_weights,
                       const at::TensorOptions& options) {
    at::Tensor workspace = at::empty({mlpk::cuda::backward_workspace_bytes<T>(p)},
                                     options.dtype(at::kByte));
    mlpk::cuda::backward<T>(p, x, hidden, out, grad_out, grad_x, grad_weights, workspace.data_ptr(),
                            Context::stream());
  }
};

}  // namespace s3d_torch
