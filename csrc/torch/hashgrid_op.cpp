// Hash-grid encoding ops: schemas and the CPU kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "hashgrid_args.h"
#include "host_context.h"
#include "s3d/hashgrid_launchers.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  using Guard = HostContext::Guard;
  // The CPU launcher zero-fills the table gradient itself, range by range.
  static constexpr bool kZeroFilledGrads = false;
  template <typename T>
  static void forward(const hg::Params<T>& p, int n_dims, int n_features, const T* points, T* out) {
    hg::cpu::forward<T>(p, n_dims, n_features, points, out, at::get_num_threads());
  }
  template <typename T>
  static void backward(const hg::Params<T>& p, int n_dims, int n_features, const T* points,
                       const T* grad_out, T* grad_points, T* grad_table, const at::TensorOptions&) {
    hg::cpu::backward<T>(p, n_dims, n_features, points, grad_out, grad_points, grad_table,
                         at::get_num_threads());
  }
};

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast, m) { s3d_torch::define_hashgrid_ops(m); }

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) { s3d_torch::impl_hashgrid_ops<s3d_torch::CpuBackend>(m); }
