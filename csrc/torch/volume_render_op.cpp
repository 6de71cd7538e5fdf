// Volume-rendering ops: schemas and the CPU kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu_memory.h"
#include "volume_render_args.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  static void prepare_output(const at::Tensor& t) { advise_huge_pages(t); }
  template <typename T, typename... Args>
  static void weights_forward(Args... args) {
    vr::cpu::weights_forward<T>(args..., at::get_num_threads());
  }
  template <typename T, typename... Args>
  static void weights_backward(Args... args) {
    vr::cpu::weights_backward<T>(args..., at::get_num_threads());
  }
  template <typename T, typename... Args>
  static void composite_forward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cpu::composite_forward<T>(p, args..., at::get_num_threads());
  }
  template <typename T, typename... Args>
  static void composite_backward(const vr::CompositeArgs<T>& p, Args... args) {
    vr::cpu::composite_backward<T>(p, args..., at::get_num_threads());
  }
  template <typename I>
  static int64_t ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays,
                             at::Tensor& offsets) {
    return vr::cpu::ray_offsets<I>(ray_indices, n_samples, n_rays, offsets.data_ptr<int64_t>(),
                                   at::get_num_threads());
  }
};

}  // namespace
}  // namespace s3d_torch

// check=false skips the offsets' values (a device-to-host sync on the GPU):
// only for s3d_fast.ops, which builds or validates its offsets itself.
TORCH_LIBRARY_FRAGMENT(s3d_fast, m) {
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

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) {
  using B = s3d_torch::CpuBackend;
  m.impl("render_weight_forward", &s3d_torch::weights_forward_impl<B>);
  m.impl("render_weight_backward", &s3d_torch::weights_backward_impl<B>);
  m.impl("composite_forward", &s3d_torch::composite_forward_impl<B>);
  m.impl("composite_backward", &s3d_torch::composite_backward_impl<B>);
  m.impl("ray_offsets", &s3d_torch::ray_offsets_impl<B>);
}
