// MLP ops: schemas and the CPU kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "host_context.h"
#include "mlp_args.h"
#include "s3d/mlp_launchers.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  using Guard = HostContext::Guard;
  // The CPU launcher overwrites the weight gradients.
  static constexpr bool kZeroFilledGrads = false;
  template <typename T>
  static void forward(const mlpk::Params<T>& p, const T* x, T* const* hidden, T* out,
                      const at::TensorOptions&) {
    mlpk::cpu::forward<T>(p, x, hidden, out, at::get_num_threads());
  }
  template <typename T>
  static void backward(const mlpk::Params<T>& p, const T* x, T* const* hidden, const T* out,
                       const T* grad_out, T* grad_x, T* const* grad_weights,
                       const at::TensorOptions&) {
    mlpk::cpu::backward<T>(p, x, hidden, out, grad_out, grad_x, grad_weights,
                           at::get_num_threads());
  }
};

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast, m) { s3d_torch::define_mlp_ops(m); }

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) { s3d_torch::impl_mlp_ops<s3d_torch::CpuBackend>(m); }
