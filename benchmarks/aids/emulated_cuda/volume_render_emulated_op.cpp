// Volume-rendering ops over the emulated CUDA launchers:
// csrc/torch/cuda/volume_render_op_cuda.cpp with host tensors and no stream.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "volume_render_args.h"

namespace s3d_torch {
namespace {

struct EmulatedBackend {
  static void prepare_output(const at::Tensor&) {}
  template <typename T, typename... Args>
  static void weights_forward(Args... args) {
    vr::cuda::weights_forward<T>(args..., nullptr);
  }
  template <typename T, typename... Args>
  static void weights_backward(Args... args) {
    vr::cuda::weights_backward<T>(args..., nullptr);
  }
  template <typename T, typename... Args>
  static void composite_forward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_forward<T>(p, args..., nullptr);
  }
  template <typename T, typename... Args>
  static void composite_backward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cuda::composite_backward<T>(p, args..., nullptr);
  }
  template <typename I>
  static int64_t ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays,
                             at::Tensor& offsets) {
    auto error = at::zeros({1}, offsets.options().dtype(at::kInt));
    vr::cuda::ray_offsets<I>(ray_indices, n_samples, n_rays, offsets.data_ptr<int64_t>(),
                             error.data_ptr<int>(), nullptr);
    return error.item<int>();
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> weights_forward_emulated(
    const at::Tensor& offsets, const at::Tensor& in, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, int64_t input_kind, bool check) {
  return weights_forward_impl<EmulatedBackend>(offsets, in, t_starts, t_ends, input_kind, check);
}

at::Tensor weights_backward_emulated(
    const at::Tensor& offsets, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, const at::Tensor& trans, const at::Tensor& alphas,
    const c10::optional<at::Tensor>& grad_weights, const c10::optional<at::Tensor>& grad_trans,
    const c10::optional<at::Tensor>& grad_alphas, int64_t input_kind, bool check) {
  return weights_backward_impl<EmulatedBackend>(offsets, t_starts, t_ends, trans, alphas,
                                                grad_weights, grad_trans, grad_alphas, input_kind,
                                                check);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_forward_emulated(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, bool check) {
  return composite_forward_impl<EmulatedBackend>(offsets, in, values, t_starts, t_ends, input_kind,
                                                 early_stop_eps, check);
}

std::tuple<at::Tensor, at::Tensor> composite_backward_emulated(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, const at::Tensor& colors, const at::Tensor& opacity,
    const at::Tensor& depth, const c10::optional<at::Tensor>& grad_colors,
    const c10::optional<at::Tensor>& grad_opacity, const c10::optional<at::Tensor>& grad_depth,
    bool input_grad, bool values_grad, bool check) {
  return composite_backward_impl<EmulatedBackend>(
      offsets, in, values, t_starts, t_ends, input_kind, early_stop_eps, colors, opacity, depth,
      grad_colors, grad_opacity, grad_depth, input_grad, values_grad, check);
}

std::tuple<at::Tensor, int64_t> ray_offsets_emulated(const at::Tensor& ray_indices,
                                                     int64_t n_rays) {
  return ray_offsets_impl<EmulatedBackend>(ray_indices, n_rays);
}

}  // namespace
}  // namespace s3d_torch

// The schemas of csrc/torch/volume_render_op.cpp, check=True included (s3d_fast.ops pass false).
TORCH_LIBRARY_FRAGMENT(s3d_fast_emulated_cuda, m) {
  m.def("ray_offsets(Tensor ray_indices, int n_rays) -> (Tensor, int)");
  m.def(
      "render_weight_forward(Tensor offsets, Tensor input, Tensor? t_starts, Tensor? t_ends, "
      "int input_kind, bool check=True) -> (Tensor, Tensor, Tensor)");
  m.def(
      "render_weight_backward(Tensor offsets, Tensor? t_starts, Tensor? t_ends, Tensor trans, "
      "Tensor alphas, Tensor? grad_weights, Tensor? grad_trans, Tensor? grad_alphas, "
      "int input_kind, bool check=True) -> Tensor");
  m.def(
      "composite_forward(Tensor offsets, Tensor input, Tensor values, Tensor? t_starts, "
      "Tensor? t_ends, int input_kind, float early_stop_eps, bool check=True) -> (Tensor, Tensor, "
      "Tensor)");
  m.def(
      "composite_backward(Tensor offsets, Tensor input, Tensor values, Tensor? t_starts, "
      "Tensor? t_ends, int input_kind, float early_stop_eps, Tensor colors, Tensor opacity, "
      "Tensor depth, Tensor? grad_colors, Tensor? grad_opacity, Tensor? grad_depth, "
      "bool input_grad, bool values_grad, bool check=True) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(s3d_fast_emulated_cuda, CPU, m) {
  m.impl("ray_offsets", &s3d_torch::ray_offsets_emulated);
  m.impl("render_weight_forward", &s3d_torch::weights_forward_emulated);
  m.impl("render_weight_backward", &s3d_torch::weights_backward_emulated);
  m.impl("composite_forward", &s3d_torch::composite_forward_emulated);
  m.impl("composite_backward", &s3d_torch::composite_backward_emulated);
}
