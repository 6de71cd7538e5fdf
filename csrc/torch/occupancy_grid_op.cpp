// Occupancy-grid marching op: schema and the CPU kernel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "occupancy_grid_args.h"

namespace s3d_torch {
namespace {

struct CpuBackend {
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

// check=false skips the range check of grid_indices (a device-to-host sync
// on the GPU): only for s3d_fast.ops, which checks them itself.
TORCH_LIBRARY_FRAGMENT(s3d_fast, m) {
  m.def(
      "occgrid_march(Tensor bits, Tensor? block_bits, int[] res, float[] center, float[] half, "
      "Tensor rays_o, "
      "Tensor rays_d, Tensor? grid_indices, Tensor t_near, Tensor t_far, float step, "
      "float cone_angle, bool check=True) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(s3d_fast, CPU, m) {
  m.impl("occgrid_march", &s3d_torch::occgrid_march_impl<s3d_torch::CpuBackend>);
}
