// Tri-plane sampling ops: schemas and the CPU kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu_memory.h"
#include "host_context.h"
#include "s3d/triplane_launchers.h"
#include "triplane_args.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  using Guard = HostContext::Guard;
  // The CPU launcher zeroes the plane gradients itself, in parallel and
  // texel by texel as it fills them, after the huge-page hint.
  static constexpr bool kZeroFilledGrads = false;
  static void prepare_output(const at::Tensor& t) { advise_huge_pages(t); }
  template <typename T>
  static void forward(const tp::Params<T>& p, const T* points, T* out) {
    tp::cpu::forward<T>(p, points, out, at::get_num_threads());
  }
  template <typename T>
  static void backward(const tp::Params<T>& p, const T* points, const T* grad_out, T* grad_points,
                       T* const* grad_planes, bool, const at::TensorOptions&) {
    tp::cpu::backward<T>(p, points, grad_out, grad_points, grad_planes, at::get_num_threads());
  }
};

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast, m) { s3d_torch::define_triplane_ops(m); }

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) { s3d_torch::impl_triplane_ops<s3d_torch::CpuBackend>(m); }
