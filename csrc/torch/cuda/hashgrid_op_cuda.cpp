// Hash-grid encoding ops: the CUDA kernels (compiled only in CUDA builds).
#include <torch/library.h>

#include "cuda_context.h"
#include "hashgrid_cuda_backend.h"

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  s3d_torch::impl_hashgrid_ops<s3d_torch::HashgridCudaBackend<s3d_torch::CudaContext>>(m);
}
