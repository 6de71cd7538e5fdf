// Entry points of the MLP kernels: raw pointers, no framework types.
#pragma once

#include "s3d/mlp.h"

namespace s3d {
namespace mlp {

// Rows per CPU tile; the hidden buffers have padded_rows(n) rows on both
// devices, so the tiles read and write them without bounds checks.
constexpr int kRowTile = 64;
inline int64_t padded_rows(int64_t n) { return (n + kRowTile - 1) / kRowTile * kRowTile; }

namespace cpu {
// hidden[l] (padded_rows(N), width) for l < n_layers - 1, written (the
// backward pass reads them); out (N, out_cols).
template <typename T>
void forward(const Params<T>& p, const T* x, T* const* hidden, T* out, int n_threads);

// grad_x (N, in_cols) or nullptr; grad_weights[l] (out_l, in_l), overwritten,
// or all nullptr. Deterministic for a given thread count: each thread sums a
// fixed range of rows, and the threads' sums are added in thread order.
template <typename T>
void backward(const Params<T>& p, const T* x, T* const* hidden, const T* out, const T* grad_out,
              T* grad_x, T* const* grad_weights, int n_threads);
}  // namespace cpu

namespace cuda {
// Device buffer sizes (bytes, 8-byte aligned) of the passes' workspaces.
template <typename T>
int64_t forward_workspace_bytes(const Params<T>& p);
template <typename T>
int64_t backward_workspace_bytes(const Params<T>& p);

// Same contracts as the CPU launchers, except that grad_weights must be
// zero-filled (they are summed with float atomics, in no fixed order).
template <typename T>
void forward(const Params<T>& p, const T* x, T* const* hidden, T* out, void* workspace,
             void* stream);

template <typename T>
void backward(const Params<T>& p, const T* x, T* const* hidden, const T* out, const T* grad_out,
              T* grad_x, T* const* grad_weights, void* workspace, void* stream);
}  // namespace cuda

}  // namespace mlp
}  // namespace s3d
