// CUDA launchers of the tri-plane kernels: one thread per point (forward,
// point gradients) or per (point, plane, scale) for the plane gradients,
// which are scattered with atomics.
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/triplane_launchers.h"

namespace s3d {
namespace triplane {
namespace cuda {

constexpr int kThreads = 256;

template <typename T>
__global__ void forward_kernel(Params<T> p, const T* points, T* out, int64_t total) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) forward_point(p, points, out, i);
}

template <typename T>
__global__ void backward_points_kernel(Params<T> p, const T* points, const T* grad_out,
                                       T* grad_points, int64_t total) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) backward_point_coords(p, points, grad_out, grad_points, i);
}

template <typename T>
__global__ void backward_planes_kernel(Params<T> p, const T* points, const T* grad_out,
                                       T* grad_plane_scale, int scale, int64_t total) {
  // Consecutive threads take the three planes of one point, then the next point.
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= total * 3) return;
  const int64_t i = t / 3;
  const int k = static_cast<int>(t % 3);
  backward_plane_point<T, AtomicAdd>(p, points, grad_out, grad_plane_scale, scale, k, i, 0,
                                     p.channels);
}

static unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
void forward(const Params<T>& p, const T* points, T* out, void* stream) {
  const int64_t total = p.batch * p.n_points;
  if (total == 0) return;
  S3D_LAUNCH(blocks_for(total), kThreads, static_cast<cudaStream_t>(stream), forward_kernel<T>)(
      p, points, out, total);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward(const Params<T>& p, const T* points, const T* grad_out, T* grad_points,
              T* const* grad_planes, void* stream) {
  const int64_t total = p.batch * p.n_points;
  if (total == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (grad_points != nullptr) {
    S3D_LAUNCH(blocks_for(total), kThreads, s, backward_points_kernel<T>)(p, points, grad_out,
                                                                          grad_points, total);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
  for (int scale = 0; scale < p.n_scales; ++scale) {
    if (grad_planes[scale] == nullptr) continue;
    S3D_LAUNCH(blocks_for(total * 3), kThreads, s, backward_planes_kernel<T>)(
        p, points, grad_out, grad_planes[scale], scale, total);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
}

template void forward<float>(const Params<float>&, const float*, float*, void*);
template void forward<double>(const Params<double>&, const double*, double*, void*);
template void backward<float>(const Params<float>&, const float*, const float*, float*,
                              float* const*, void*);
template void backward<double>(const Params<double>&, const double*, const double*, double*,
                               double* const*, void*);

}  // namespace cuda
}  // namespace triplane
}  // namespace s3d
