// Shared by every kernel body: compiles as plain C++ and as CUDA.
//
// A kernel body is an inline S3D_HOST_DEVICE function that does the work of
// one element (a point, a ray, a cell). The CPU launchers call it from an
// OpenMP loop, the CUDA launchers from a one-line __global__; so the tests
// that run the CPU build also exercise the code the GPU runs.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define S3D_HOST_DEVICE __host__ __device__
#define S3D_INLINE __forceinline__
#else
#define S3D_HOST_DEVICE
#define S3D_INLINE inline
#endif

#define S3D_FN S3D_HOST_DEVICE S3D_INLINE

// For a body the host compiler would otherwise outline from a hot loop (a
// call per step costs more than the body: e.g. the marcher's grid lookup).
#if defined(__CUDACC__)
#define S3D_HOT_FN S3D_HOST_DEVICE __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define S3D_HOT_FN inline __attribute__((always_inline))
#else
#define S3D_HOT_FN inline
#endif

namespace s3d {

// Scatter-add used by backward passes. CUDA threads race on the same output,
// so they need atomics; the CPU launchers partition outputs so that exactly
// one thread writes each element (deterministic, no atomics).
struct AtomicAdd {
  template <typename T>
  S3D_FN static void add(T* address, T value) {
#if defined(__CUDA_ARCH__)
    atomicAdd(address, value);
#else
    // Only reached by host code that owns `address` exclusively.
    *address += value;
#endif
  }
};

struct ExclusiveAdd {
  template <typename T>
  S3D_FN static void add(T* address, T value) {
    *address += value;
  }
};

template <typename T>
S3D_FN T clamp(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

template <typename T>
S3D_FN T floor_(T x);

template <>
S3D_FN float floor_<float>(float x) {
#if defined(__CUDA_ARCH__)
  return floorf(x);
#else
  return __builtin_floorf(x);
#endif
}

template <>
S3D_FN double floor_<double>(double x) {
#if defined(__CUDA_ARCH__)
  return ::floor(x);
#else
  return __builtin_floor(x);
#endif
}

template <typename T>
S3D_FN T exp_(T x);
template <>
S3D_FN float exp_<float>(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return __builtin_expf(x);
#endif
}
template <>
S3D_FN double exp_<double>(double x) {
#if defined(__CUDA_ARCH__)
  return ::exp(x);
#else
  return __builtin_exp(x);
#endif
}

}  // namespace s3d
