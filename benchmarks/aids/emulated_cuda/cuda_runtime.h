// Stand-in for <cuda_runtime.h> that compiles the CUDA launchers
// (csrc/cuda/*.cu) as host C++ and runs every launch on the calling thread:
// all blocks of the grid in a seeded random order, all threads of a block in
// a seeded random order, one after the other.
//
// Running threads one at a time is only equivalent to a GPU when threads do
// not wait for or talk to each other except through atomics. So everything
// that would let them (shared memory, barriers, warp shuffles and votes) is
// refused at compile time: a kernel that starts using it fails to build here
// instead of passing a sequential emulation that proves nothing.
//
// Test-only: included by benchmarks/aids/emulated_cuda/*_cuda_emulated.cpp
// before the .cu file it wraps, never by the shipped extension.
#pragma once

#include <math.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "emulated_cuda_state.h"

// The kernel bodies take their device paths (s3d/common.h, volume_render.h).
#define __CUDACC__ 1
#define __CUDA_ARCH__ 800

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))

// -- refused: what would make threads depend on each other --------------------------------------
#define S3D_EMULATED_CUDA_REFUSAL(what)                                              \
  what " is not emulated: threads run one after another, so a kernel that needs it " \
       "cannot be checked on the CPU (see docs/kernels/emulated-cuda.md)"
#define S3D_EMULATED_CUDA_REFUSE(what) \
  ([] { static_assert(sizeof(char) == 0, S3D_EMULATED_CUDA_REFUSAL(what)); }())
#define __shared__                                                           \
  static_assert(sizeof(char) == 0, S3D_EMULATED_CUDA_REFUSAL("__shared__")); \
  static
#define __syncthreads(...) S3D_EMULATED_CUDA_REFUSE("__syncthreads")
#define __syncthreads_count(...) S3D_EMULATED_CUDA_REFUSE("__syncthreads_count")
#define __syncthreads_and(...) S3D_EMULATED_CUDA_REFUSE("__syncthreads_and")
#define __syncthreads_or(...) S3D_EMULATED_CUDA_REFUSE("__syncthreads_or")
#define __syncwarp(...) S3D_EMULATED_CUDA_REFUSE("__syncwarp")
#define __shfl(...) S3D_EMULATED_CUDA_REFUSE("__shfl")
#define __shfl_up(...) S3D_EMULATED_CUDA_REFUSE("__shfl_up")
#define __shfl_down(...) S3D_EMULATED_CUDA_REFUSE("__shfl_down")
#define __shfl_xor(...) S3D_EMULATED_CUDA_REFUSE("__shfl_xor")
#define __shfl_sync(...) S3D_EMULATED_CUDA_REFUSE("__shfl_sync")
#define __shfl_up_sync(...) S3D_EMULATED_CUDA_REFUSE("__shfl_up_sync")
#define __shfl_down_sync(...) S3D_EMULATED_CUDA_REFUSE("__shfl_down_sync")
#define __shfl_xor_sync(...) S3D_EMULATED_CUDA_REFUSE("__shfl_xor_sync")
#define __ballot_sync(...) S3D_EMULATED_CUDA_REFUSE("__ballot_sync")
#define __any_sync(...) S3D_EMULATED_CUDA_REFUSE("__any_sync")
#define __all_sync(...) S3D_EMULATED_CUDA_REFUSE("__all_sync")
#define __activemask(...) S3D_EMULATED_CUDA_REFUSE("__activemask")
#define __match_any_sync(...) S3D_EMULATED_CUDA_REFUSE("__match_any_sync")
#define __match_all_sync(...) S3D_EMULATED_CUDA_REFUSE("__match_all_sync")
#define __reduce_add_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_add_sync")
#define __reduce_min_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_min_sync")
#define __reduce_max_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_max_sync")
#define __reduce_and_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_and_sync")
#define __reduce_or_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_or_sync")
#define __reduce_xor_sync(...) S3D_EMULATED_CUDA_REFUSE("__reduce_xor_sync")

// -- built-in variables and launch geometry ------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// Set by the launcher before each emulated thread runs (thread_local: torch
// may call the glue from several host threads).
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

// -- runtime API: what the launchers call --------------------------------------------------------
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace s3d_emulated_cuda {
inline thread_local cudaError_t last_error = cudaSuccess;
}  // namespace s3d_emulated_cuda

inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  }
  return "unknown error";
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t error = s3d_emulated_cuda::last_error;
  s3d_emulated_cuda::last_error = cudaSuccess;
  return error;
}

inline cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) {
  if (bytes > 0 && ptr == nullptr) return cudaErrorInvalidValue;
  if (bytes > 0) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

// -- atomics: sequential threads make a plain read-modify-write atomic --------------------------
inline float atomicAdd(float* address, float value) {
  ++s3d_emulated_cuda::counters().float_atomic_adds;
  const float old = *address;
  *address = old + value;
  return old;
}
inline double atomicAdd(double* address, double value) {
  ++s3d_emulated_cuda::counters().float_atomic_adds;
  const double old = *address;
  *address = old + value;
  return old;
}
template <typename I>
inline I emulated_integer_add(I* address, I value) {
  ++s3d_emulated_cuda::counters().integer_atomics;
  const I old = *address;
  *address = old + value;
  return old;
}
inline int atomicAdd(int* address, int value) { return emulated_integer_add(address, value); }
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return emulated_integer_add(address, value);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return emulated_integer_add(address, value);
}
inline int atomicOr(int* address, int value) {
  ++s3d_emulated_cuda::counters().integer_atomics;
  const int old = *address;
  *address = old | value;
  return old;
}

// -- the launch ----------------------------------------------------------------------------------
namespace s3d_emulated_cuda {

// CUDA's limits on a launch (any GPU since compute capability 3.0).
inline bool valid_geometry(dim3 grid, dim3 block) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u && grid.y <= 65535u &&
         grid.z <= 65535u && threads >= 1 && threads <= 1024 && block.z <= 64;
}

template <typename... Params>
struct Launch {
  void (*kernel)(Params...);
  dim3 grid, block;

  template <typename... Args>
  void operator()(Args&&... args) const {
    if (!valid_geometry(grid, block)) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
    Counters& state = counters();
    const uint64_t launch = state.launches++;
    std::mt19937_64 rng(state.seed.load() * 0x9E3779B97F4A7C15ull + launch);
    const uint64_t n_blocks = uint64_t(grid.x) * grid.y * grid.z;
    const unsigned n_threads = block.x * block.y * block.z;
    std::vector<uint64_t> blocks(n_blocks);
    std::iota(blocks.begin(), blocks.end(), uint64_t(0));
    std::shuffle(blocks.begin(), blocks.end(), rng);
    std::vector<unsigned> threads(n_threads);
    gridDim = grid;
    blockDim = block;
    for (const uint64_t b : blocks) {
      blockIdx = {unsigned(b % grid.x), unsigned(b / grid.x % grid.y),
                  unsigned(b / grid.x / grid.y)};
      std::iota(threads.begin(), threads.end(), 0u);
      std::shuffle(threads.begin(), threads.end(), rng);
      for (const unsigned t : threads) {
        threadIdx = {t % block.x, t / block.x % block.y, t / block.x / block.y};
        kernel(args...);
      }
    }
  }
};

template <typename... Params>
Launch<Params...> launch(dim3 grid, dim3 block, cudaStream_t, void (*kernel)(Params...)) {
  return {kernel, grid, block};
}

}  // namespace s3d_emulated_cuda

// What csrc/include/s3d/cuda_check.h defines as kernel<<<grid, block, 0, stream>>>.
#define S3D_LAUNCH(grid, block, stream, ...) \
  ::s3d_emulated_cuda::launch(grid, block, stream, __VA_ARGS__)
