// MLP ops: the CUDA kernels (compiled only in CUDA builds).
#include <torch/library.h>

#include "cuda_context.h"
#include "mlp_cuda_backend.h"

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  s3d_torch::impl_mlp_ops<s3d_torch::MlpCudaBackend<s3d_torch::CudaContext>>(m);
}
