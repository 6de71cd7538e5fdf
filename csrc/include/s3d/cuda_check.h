// Error reporting for CUDA launchers, without framework headers: a failed
// launch becomes a C++ exception that the torch glue turns into a Python error.
#pragma once

#if defined(__CUDACC__) || defined(S3D_WITH_CUDA)
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define S3D_CUDA_CHECK(expr)                                                            \
  do {                                                                                  \
    cudaError_t s3d_err_ = (expr);                                                      \
    if (s3d_err_ != cudaSuccess)                                                        \
      throw std::runtime_error(std::string("s3d_fast CUDA error: ") +                   \
                               cudaGetErrorString(s3d_err_) + " at " + __FILE__ + ":" + \
                               std::to_string(__LINE__));                               \
  } while (0)
#endif

// A kernel launch: S3D_LAUNCH(grid, block, stream, kernel)(args...) is
// kernel<<<grid, block, 0, stream>>>(args...). Every launcher launches through
// it (no dynamic shared memory), so that the test build can compile the .cu
// files as host C++ and run the launches on the CPU; its emulated runtime
// (benchmarks/aids/emulated_cuda/cuda_runtime.h) defines it first.
#if defined(__CUDACC__) && !defined(S3D_LAUNCH)
#define S3D_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#endif
