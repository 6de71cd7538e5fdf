// The volume-rendering ops' CUDA backend for volume_render_args.h: the CUDA
// launchers on the stream of a launch context (cuda_context.h in the CUDA
// build; the emulated CUDA test build runs it with host_context.h).
#pragma once

#include <ATen/ATen.h>

#include "../volume_render_args.h"

namespace s3d_torch {

template <typename Context>
struct VolumeRenderCudaBackend {
  using Guard = typename Context::Guard;
  static void prepare_output(const at::Tensor&) {}
  template <typename T, typename... Args>
  static void weights_forward(Args... args) {
    vr::cuda::weights_forward<T>(args..., Context::stream());
  }
  template <typename T, typename... Args>
  static void weights_backward(Args... args) {
    vr::cuda::weights_backward<T>(args..., Context::stream());
  }
  template <typename T, typename... Args>
  static void composite_forward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_forward<T>(p, args..., Context::stream());
  }
  template <typename T, typename... Args>
  static void composite_backward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_backward<T>(p, args..., Context::stream());
  }
  // One small device-to-host copy for the error bits (as searchsorted plus a
  // sortedness check would need anyway).
  template <typename I>
  static int64_t ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays,
                             at::Tensor& offsets) {
    auto error = at::zeros({1}, offsets.options().dtype(at::kInt));
    vr::cuda::ray_offsets<I>(ray_indices, n_samples, n_rays, offsets.data_ptr<int64_t>(),
                             error.data_ptr<int>(), Context::stream());
    return error.item<int>();
  }
};

}  // namespace s3d_torch
