// CPU launchers of the occupancy-grid marcher: OpenMP loops over rays.
// Rays cross very different amounts of occupied space, so they are handed
// out dynamically; each ray writes only its own slice of the outputs.
#include "s3d/occupancy_grid_launchers.h"

namespace s3d {
namespace occupancy {
namespace cpu {

constexpr int kRayBlock = 64;
constexpr int64_t kMinParallelRays = 128;

template <typename T>
void march_count(const MarchParams<T>& p, int64_t n_rays, int64_t* counts, int n_threads) {
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
  for (int64_t r = 0; r < n_rays; ++r) {
    CountEmit emit;
    counts[r] = march_ray(p, r, emit);
  }
}

template <typename T>
void march_fill(const MarchParams<T>& p, int64_t n_rays, const int64_t* offsets,
                int64_t* ray_indices, T* t_starts, T* t_ends, int n_threads) {
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
  for (int64_t r = 0; r < n_rays; ++r) {
    const int64_t count = offsets[r + 1] - offsets[r];
    if (count == 0) continue;  // rays that hit nothing are not walked again
    WriteEmit<T> emit{r, offsets[r], count, ray_indices, t_starts, t_ends};
    march_ray(p, r, emit);
  }
}

template void march_count<float>(const MarchParams<float>&, int64_t, int64_t*, int);
template void march_count<double>(const MarchParams<double>&, int64_t, int64_t*, int);
template void march_fill<float>(const MarchParams<float>&, int64_t, const int64_t*, int64_t*,
                                float*, float*, int);
template void march_fill<double>(const MarchParams<double>&, int64_t, const int64_t*, int64_t*,
                                 double*, double*, int);

}  // namespace cpu
}  // namespace occupancy
}  // namespace s3d
