// Occupancy-grid marching op: the CUDA kernel (compiled only in CUDA builds).
#include <torch/library.h>

#include "cuda_context.h"
#include "occupancy_grid_cuda_backend.h"

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  s3d_torch::impl_occupancy_grid_ops<s3d_torch::OccupancyGridCudaBackend<s3d_torch::CudaContext>>(
      m);
}
