// Volume-rendering ops: the CUDA kernels (compiled only in CUDA builds).
#include <torch/library.h>

#include "cuda_context.h"
#include "volume_render_cuda_backend.h"

TORCH_LIBRARY_IMPL(s3d_fast, CUDA, m) {
  s3d_torch::impl_volume_render_ops<s3d_torch::VolumeRenderCudaBackend<s3d_torch::CudaContext>>(m);
}
