// Entry points of the occupancy-grid marcher: raw pointers, no framework types.
// Two passes over rays: count the samples of each ray, then (after an
// exclusive scan of the counts by the caller) write them at the ray's offset.
#pragma once

#include "s3d/occupancy_grid.h"

namespace s3d {
namespace occupancy {

namespace cpu {
template <typename T>
void march_count(const MarchParams<T>& p, int64_t n_rays, int64_t* counts, int n_threads);
// offsets: (n_rays + 1,) exclusive scan of the counts (the last entry is the total).
template <typename T>
void march_fill(const MarchParams<T>& p, int64_t n_rays, const int64_t* offsets,
                int64_t* ray_indices, T* t_starts, T* t_ends, int n_threads);
}  // namespace cpu

namespace cuda {
template <typename T>
void march_count(const MarchParams<T>& p, int64_t n_rays, int64_t* counts, void* stream);
template <typename T>
void march_fill(const MarchParams<T>& p, int64_t n_rays, const int64_t* offsets,
                int64_t* ray_indices, T* t_starts, T* t_ends, void* stream);
}  // namespace cuda

}  // namespace occupancy
}  // namespace s3d
