// The tri-plane ops' CUDA backend for triplane_args.h: the CUDA launchers on
// the stream of a launch context (cuda_context.h in the CUDA build; the
// emulated CUDA test build runs it with host_context.h).
#pragma once

#include <ATen/ATen.h>

#include "../triplane_args.h"
#include "s3d/triplane_launchers.h"

namespace s3d_torch {

template <typename Context>
struct TriplaneCudaBackend {
  using Guard = typename Context::Guard;
  static constexpr bool kZeroFilledGrads = true;  // the launcher adds into the plane gradients
  static void prepare_output(const at::Tensor&) {}
  template <typename T>
  static void forward(const tp::Params<T>& p, const T* points, T* out) {
    tp::cuda::forward<T>(p, points, out, Context::stream());
  }
  template <typename T>
  static void backward(const tp::Params<T>& p, const T* points, const T* grad_out, T* grad_points,
                       T* const* grad_planes, bool planes_grad, const at::TensorOptions& options) {
    // torch.use_deterministic_algorithms(True): no float atomics (sorted gather).
    const bool deterministic = planes_grad && at::globalContext().deterministicAlgorithms();
    const int64_t bytes = tp::cuda::backward_workspace_bytes<T>(p, deterministic);
    at::Tensor workspace = at::empty({bytes}, options.dtype(at::kByte));
    tp::cuda::backward<T>(p, points, grad_out, grad_points, grad_planes, deterministic,
                          workspace.data_ptr(), Context::stream());
  }
};

}  // namespace s3d_torch
