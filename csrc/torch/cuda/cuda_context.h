// The launch context of the CUDA bindings: the tensors' device made current,
// and torch's current stream on it. The backends in this folder take it as a
// template argument, so that the emulated CUDA test build can run the same
// binding code with host tensors (../host_context.h).
#pragma once

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // not ATen/cuda/CUDAContext.h: it needs cuSPARSE/cuBLAS headers

namespace s3d_torch {

struct CudaContext {
  using Guard = c10::cuda::CUDAGuard;
  static void* stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
};

}  // namespace s3d_torch
