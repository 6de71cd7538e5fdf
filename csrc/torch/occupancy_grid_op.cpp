// Occupancy-grid marching op: schema and the CPU kernel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "host_context.h"
#include "occupancy_grid_args.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
  using Guard = HostContext::Guard;
  template <typename T>
  static void march_count(const og::MarchParams<T>& p, int64_t n, int64_t* counts) {
    og::cpu::march_count<T>(p, n, counts, at::get_num_threads());
  }
  template <typename T>
  static void march_fill(const og::MarchParams<T>& p, int64_t n, const int64_t* offsets,
                         int64_t* rays, T* t0, T* t1) {
    og::cpu::march_fill<T>(p, n, offsets, rays, t0, t1, at::get_num_threads());
  }
};

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_FRAGMENT(s3d_fast, m) { s3d_torch::define_occupancy_grid_ops(m); }

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) {
  s3d_torch::impl_occupancy_grid_ops<s3d_torch::CpuBackend>(m);
}
