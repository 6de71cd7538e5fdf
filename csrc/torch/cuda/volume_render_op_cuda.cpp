// Volume-rendering ops: the CUDA kernels (compiled only in CUDA builds).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // not ATen/cuda/CUDAContext.h: it needs cuSPARSE/cuBLAS headers
#include <torch/library.h>

#include "../volume_render_args.h"

namespace s3d_torch {
namespace {

inline void* current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

struct CudaBackend {
  static void prepare_output(const at::Tensor&) {}
  template <typename T, typename... Args>
  static void weights_forward(Args... args) {
    vr::cuda::weights_forward<T>(args..., current_stream());
  }
  template <typename T, typename... Args>
  static void weights_backward(Args... args) {
    vr::cuda::weights_backward<T>(args..., current_stream());
  }
  template <typename T, typename... Args>
  static void composite_forward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_forward<T>(p, args..., current_stream());
  }
  template <typename T, typename... Args>
  static void composite_backward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_backward<T>(p, args..., current_stream());
  }
  // One small device-to-host copy for the error bits (as searchsorted plus a
  // sortedness check would need anyway).
  template <typename I>
  static int64_t ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays,
                             at::Tensor& offsets) {
    auto error = at::zeros({1}, offsets.options().dtype(at::kInt));
    vr::cuda::ray_offsets<I>(ray_indices, n_samples, n_rays, offsets.data_ptr<int64_t>(),
                             error.data_ptr<int>(), current_stream());
    return error.item<int>();
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> weights_forward_cuda(
    const at::Tensor& offsets, const at::Tensor& in, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, int64_t input_kind, bool check) {
  const c10::cuda::CUDAGuard guard(in.device());
  return weights_forward_impl<CudaBackend>(offsets, in, t_starts, t_ends, input_kind, check);
}

at::Tensor weights_backward_cuda(
    const at::Tensor& offsets, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, const at::Tensor& trans, const at::Tensor& alphas,
    const c10::optional<at::Tensor>& grad_weights, const c10::optional<at::Tensor>& grad_trans,
    const c10::optional<at::Tensor>& grad_alphas, int64_t input_kind, bool check) {
  const c10::cuda::CUDAGuard guard(alphas.device());
  return weights_backward_impl<CudaBackend>(offsets, t_starts, t_ends, trans, alphas, grad_weights,
                                            grad_trans, grad_alphas, input_kind, check);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_forward_cuda(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, bool check) {
  const c10::cuda::CUDAGuard guard(in.device());
  return composite_forward_impl<CudaBackend>(offsets, in, values, t_starts, t_ends, input_kind,
                                             early_stop_eps, check);
}

std::tuple<at::Tensor, at::Tensor> composite_backward_cuda(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, const at::Tensor& colors, const at::Tensor& opacity,
    const at::Tensor& depth, const c10::optional<at::Tensor>& grad_colors,
    const c10::optional<at::Tensor>& grad_opacity, const c10::optional<at::Tensor>& grad_depth,
    bool input_grad, bool values_grad, bool check) {
  const c10::cuda::CUDAGuard guard(in.device());
  return composite_backward_impl<CudaBackend>(
      offsets, in, values, t_starts, t_ends, input_kind, early_stop_eps, colors, opacity, depth,
      grad_colors, grad_opacity, grad_depth, input_grad, values_grad, check);
}

std::tuple<at::Tensor, int64_t> ray_offsets_cuda(const at::Tensor& ray_indices, int64_t n_rays) {
  const c10::cuda::CUDAGuard guard(ray_indices.device());
  return ray_offsets_impl<CudaBackend>(ray_indices, n_rays);
}

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  m.impl("ray_offsets", &s3d_torch::ray_offsets_cuda);
  m.impl("render_weight_forward", &s3d_torch::weights_forward_cuda);
  m.impl("render_weight_backward", &s3d_torch::weights_backward_cuda);
  m.impl("composite_forward", &s3d_torch::composite_forward_cuda);
  m.impl("composite_backward", &s3d_torch::composite_backward_cuda);
}
