// Entry points of the hash-grid kernels: raw pointers, no framework types.
#pragma once

#include "s3d/hashgrid.h"

namespace s3d {
namespace hashgrid {

// Compile-time (D, F) pairs: D in {1, 2, 3}, F in {1, 2, 4, 8} (tcnn's set).
// Calls fn.template operator()<D, F>(); returns false for an unsupported pair.
template <typename Fn>
bool dispatch_dims(int n_dims, int n_features, Fn&& fn) {
#define S3D_HG_CASE(D, F)               \
  if (n_dims == D && n_features == F) { \
    fn.template operator()<D, F>();     \
    return true;                        \
  }
#define S3D_HG_DIM(D) S3D_HG_CASE(D, 1) S3D_HG_CASE(D, 2) S3D_HG_CASE(D, 4) S3D_HG_CASE(D, 8)
  S3D_HG_DIM(1)
  S3D_HG_DIM(2)
  S3D_HG_DIM(3)
#undef S3D_HG_DIM
#undef S3D_HG_CASE
  return false;
}

namespace cpu {
// out: (N, L*F).
template <typename T>
void forward(const Params<T>& p, int n_dims, int n_features, const T* points, T* out,
             int n_threads);

// grad_points: (N, D) or nullptr; grad_table: (entries, F), overwritten (no
// need to zero it), or nullptr. Deterministic: every table entry has one
// writer, which visits the points in order.
template <typename T>
void backward(const Params<T>& p, int n_dims, int n_features, const T* points, const T* grad_out,
              T* grad_points, T* grad_table, int n_threads);
}  // namespace cpu

namespace cuda {
// Same contracts as the CPU launchers, except that grad_table must be
// zero-filled.
template <typename T>
void forward(const Params<T>& p, int n_dims, int n_features, const T* points, T* out, void* stream);

// The table gradient is scattered with float atomicAdd (its summation order
// varies from run to run) unless `deterministic`: then the contributions are
// sorted by entry and each entry sums its own in a fixed order (bit-identical
// from run to run), in `workspace`, a device buffer of
// backward_workspace_bytes(p, n_dims, true) bytes (8-byte aligned).
template <typename T>
int64_t backward_workspace_bytes(const Params<T>& p, int n_dims, bool deterministic);

template <typename T>
void backward(const Params<T>& p, int n_dims, int n_features, const T* points, const T* grad_out,
              T* grad_points, T* grad_table, bool deterministic, void* workspace, void* stream);
}  // namespace cuda

}  // namespace hashgrid
}  // namespace s3d
