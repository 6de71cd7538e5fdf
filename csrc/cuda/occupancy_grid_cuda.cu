// CUDA launchers of the occupancy-grid marcher: one thread per ray, the same
// body as the CPU; counting and filling are separate launches.
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/occupancy_grid_launchers.h"

namespace s3d {
namespace occupancy {
namespace cuda {

constexpr int kThreads = 128;

static unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
__global__ void count_kernel(MarchParams<T> p, int64_t n_rays, int64_t* counts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_rays) return;
  CountEmit emit;
  counts[r] = march_ray(p, r, emit);
}

template <typename T>
__global__ void fill_kernel(MarchParams<T> p, int64_t n_rays, const int64_t* offsets,
                            int64_t* ray_indices, T* t_starts, T* t_ends) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_rays) return;
  const int64_t count = offsets[r + 1] - offsets[r];
  if (count == 0) return;  // rays that hit nothing are not walked again
  WriteEmit<T> emit{r, offsets[r], count, ray_indices, t_starts, t_ends};
  march_ray(p, r, emit);
}

template <typename T>
void march_count(const MarchParams<T>& p, int64_t n_rays, int64_t* counts, void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream), count_kernel<T>)(
      p, n_rays, counts);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void march_fill(const MarchParams<T>& p, int64_t n_rays, const int64_t* offsets,
                int64_t* ray_indices, T* t_starts, T* t_ends, void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream), fill_kernel<T>)(
      p, n_rays, offsets, ray_indices, t_starts, t_ends);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template void march_count<float>(const MarchParams<float>&, int64_t, int64_t*, void*);
template void march_count<double>(const MarchParams<double>&, int64_t, int64_t*, void*);
template void march_fill<float>(const MarchParams<float>&, int64_t, const int64_t*, int64_t*,
                                float*, float*, void*);
template void march_fill<double>(const MarchParams<double>&, int64_t, const int64_t*, int64_t*,
                                 double*, double*, void*);

}  // namespace cuda
}  // namespace occupancy
}  // namespace s3d
