// Occupancy-grid marching over the emulated CUDA launchers:
// csrc/torch/cuda/occupancy_grid_op_cuda.cpp with host tensors and no stream.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "occupancy_grid_args.h"

namespace s3d_torch {
namespace {

struct EmulatedBackend {
  template <typename T>
  static void march_count(const og::MarchParams<T>& p, int64_t n, int64_t* counts) {
    og::cuda::march_count<T>(p, n, counts, nullptr);
  }
  template <typename T>
  static void march_fill(const og::MarchParams<T>& p, int64_t n, const int64_t* offsets,
                         int64_t* rays, T* t0, T* t1) {
    og::cuda::march_fill<T>(p, n, offsets, rays, t0, t1, nullptr);
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> occgrid_march_emulated(
    const at::Tensor& bits, const c10::optional<at::Tensor>& block_bits, at::IntArrayRef res,
    at::ArrayRef<double> center, at::ArrayRef<double> half, const at::Tensor& rays_o,
    const at::Tensor& rays_d, const c10::optional<at::Tensor>& grid_indices,
    const at::Tensor& t_near, const at::Tensor& t_far, double step, double cone_angle, bool check) {
  return occgrid_march_impl<EmulatedBackend>(bits, block_bits, res, center, half, rays_o, rays_d,
                                             grid_indices, t_near, t_far, step, cone_angle, check);
}

}  // namespace
}  // namespace s3d_torch

// The schemas of csrc/torch/occupancy_grid_op.cpp, check=True included (s3d_fast.ops pass false).
TORCH_LIBRARY_FRAGMENT(s3d_fast_emulated_cuda, m) {
  m.def(
      "occgrid_march(Tensor bits, Tensor? block_bits, int[] res, float[] center, float[] half, "
      "Tensor rays_o, Tensor rays_d, Tensor? grid_indices, Tensor t_near, Tensor t_far, "
      "float step, float cone_angle, bool check=True) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(s3d_fast_emulated_cuda, CPU, m) {
  m.impl("occgrid_march", &s3d_torch::occgrid_march_emulated);
}
