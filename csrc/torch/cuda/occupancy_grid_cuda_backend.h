// The occupancy-grid marcher's CUDA backend for occupancy_grid_args.h: the
// CUDA launchers on the stream of a launch context (cuda_context.h in the
// CUDA build; the emulated CUDA test build runs it with host_context.h).
#pragma once

#include <cstdint>

#include "../occupancy_grid_args.h"

namespace s3d_torch {

template <typename Context>
struct OccupancyGridCudaBackend {
  using Guard = typename Context::Guard;
  template <typename T>
  static void march_count(const og::MarchParams<T>& p, int64_t n, int64_t* counts) {
    og::cuda::march_count<T>(p, n, counts, Context::stream());
  }
  template <typename T>
  static void march_fill(const og::MarchParams<T>& p, int64_t n, const int64_t* offsets,
                         int64_t* rays, T* t0, T* t1) {
    og::cuda::march_fill<T>(p, n, offsets, rays, t0, t1, Context::stream());
  }
};

}  // namespace s3d_torch
