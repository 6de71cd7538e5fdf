// Entry points of the tri-plane kernels: raw pointers, no framework types, so
// that the CPU library, the CUDA objects and any host application can share them.
#pragma once

#include "s3d/triplane.h"

namespace s3d {
namespace triplane {

namespace cpu {
// out: (B*N, out_channels).
template <typename T>
void forward(const Params<T>& p, const T* points, T* out, int n_threads);

// grad_points: (B*N, 3) or nullptr; grad_planes[s]: (B, 3, H, W, C), any
// contents (the launcher overwrites every element), or nullptr for a scale
// that needs no gradient. Deterministic for a given
// thread count (every output element has exactly one writer).
template <typename T>
void backward(const Params<T>& p, const T* points, const T* grad_out, T* grad_points,
              T* const* grad_planes, int n_threads);
}  // namespace cpu

namespace cuda {
// `stream` is a cudaStream_t. Same contracts as the CPU launchers, except
// that grad_planes must be zero-filled.
template <typename T>
void forward(const Params<T>& p, const T* points, T* out, void* stream);

// The plane gradients are scattered with float atomics (their summation order
// varies from run to run) unless `deterministic`: then the contributions are
// sorted by texel and each texel sums its own in a fixed order (bit-identical
// from run to run), in `workspace`, a device buffer of
// backward_workspace_bytes(p, true) bytes (8-byte aligned).
template <typename T>
int64_t backward_workspace_bytes(const Params<T>& p, bool deterministic);

template <typename T>
void backward(const Params<T>& p, const T* points, const T* grad_out, T* grad_points,
              T* const* grad_planes, bool deterministic, void* workspace, void* stream);
}  // namespace cuda

}  // namespace triplane
}  // namespace s3d
