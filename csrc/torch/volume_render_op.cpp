// Volume-rendering ops: schemas and the CPU kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu_memory.h"
#include "host_context.h"
#include "volume_render_args.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  using Guard = HostContext::Guard;
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

TORCH_LIBRARY_FRAGMENT(s3d_fast, m) { s3d_torch::define_volume_render_ops(m); }

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) {
  s3d_torch::impl_volume_render_ops<s3d_torch::CpuBackend>(m);
}
