// Tri-plane sampling ops: the CUDA kernels (compiled only in CUDA builds).
#include <torch/library.h>

#include "cuda_context.h"
#include "triplane_cuda_backend.h"

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  s3d_torch::impl_triplane_ops<s3d_torch::TriplaneCudaBackend<s3d_torch::CudaContext>>(m);
}
