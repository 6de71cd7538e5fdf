// Occupancy-grid marching op: the CUDA kernel (compiled only in CUDA builds).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // not ATen/cuda/CUDAContext.h: it needs cuSPARSE/cuBLAS headers
#include <torch/library.h>

#include "../occupancy_grid_args.h"

namespace s3d_torch {
namespace {

struct CudaBackend {
  template <typename T>
  static void march_count(const og::MarchParams<T>& p, int64_t n, int64_t* counts) {
    og::cuda::march_count<T>(p, n, counts, c10::cuda::getCurrentCUDAStream().stream());
  }
  template <typename T>
  static void march_fill(const og::MarchParams<T>& p, int64_t n, const int64_t* offsets,
                         int64_t* rays, T* t0, T* t1) {
    og::cuda::march_fill<T>(p, n, offsets, rays, t0, t1,
                            c10::cuda::getCurrentCUDAStream().stream());
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> occgrid_march_cuda(
    const at::Tensor& bits, const c10::optional<at::Tensor>& block_bits, at::IntArrayRef res,
    at::ArrayRef<double> center, at::ArrayRef<double> half, const at::Tensor& rays_o,
    const at::Tensor& rays_d, const c10::optional<at::Tensor>& grid_indices,
    const at::Tensor& t_near, const at::Tensor& t_far, double step, double cone_angle, bool check) {
  const c10::cuda::CUDAGuard guard(rays_o.device());
  return occgrid_march_impl<CudaBackend>(bits, block_bits, res, center, half, rays_o, rays_d,
                                         grid_indices, t_near, t_far, step, cone_angle, check);
}

}  // namespace
}  // namespace s3d_torch

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) { m.impl("occgrid_march", &s3d_torch::occgrid_march_cuda); }
