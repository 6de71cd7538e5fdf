// CUDA launchers of the hash-grid kernels. Like tiny-cuda-nn, a block covers
// one level (blockIdx.y) for a run of points, so the threads of a block gather
// from one level's slice of the table; table gradients are scattered with
// atomics (the CPU launchers partition instead).
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/hashgrid_launchers.h"

namespace s3d {
namespace hashgrid {
namespace cuda {

constexpr int kThreads = 256;

template <int D, int F, typename T>
__global__ void forward_kernel(Params<T> p, const T* points, T* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n_points) return;
  const int level = blockIdx.y;
  const int64_t width = static_cast<int64_t>(p.layout.n_levels) * F;
  forward_level<D, F, T>(p, level, points + i * D, out + i * width + level * F);
}

template <int D, int F, typename T>
__global__ void backward_table_kernel(Params<T> p, const T* points, const T* grad_out,
                                      T* grad_table) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n_points) return;
  const int level = blockIdx.y;
  const int64_t width = static_cast<int64_t>(p.layout.n_levels) * F;
  backward_table_level<D, F, T, AtomicAdd>(
      p, level, points + i * D, grad_out + i * width + level * F, grad_table, 0u, 0xFFFFFFFFu);
}

template <int D, int F, typename T>
__global__ void backward_input_kernel(Params<T> p, const T* points, const T* grad_out,
                                      T* grad_points) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n_points) return;
  const int64_t width = static_cast<int64_t>(p.layout.n_levels) * F;
  backward_input_point<D, F, T>(p, points + i * D, grad_out + i * width, grad_points + i * D);
}

static dim3 grid_for(int64_t n, int levels) {
  return dim3(static_cast<unsigned>((n + kThreads - 1) / kThreads), static_cast<unsigned>(levels));
}

template <typename T>
struct Forward {
  const Params<T>& p;
  const T* points;
  T* out;
  cudaStream_t stream;
  template <int D, int F>
  void operator()() const {
    S3D_LAUNCH(grid_for(p.n_points, p.layout.n_levels), kThreads, stream, forward_kernel<D, F, T>)(
        p, points, out);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
};

template <typename T>
struct Backward {
  const Params<T>& p;
  const T* points;
  const T* grad_out;
  T* grad_points;
  T* grad_table;
  cudaStream_t stream;
  template <int D, int F>
  void operator()() const {
    if (grad_table != nullptr) {
      S3D_LAUNCH(grid_for(p.n_points, p.layout.n_levels), kThreads, stream,
                 backward_table_kernel<D, F, T>)(p, points, grad_out, grad_table);
      S3D_CUDA_CHECK(cudaGetLastError());
    }
    if (grad_points != nullptr) {
      S3D_LAUNCH(grid_for(p.n_points, 1), kThreads, stream, backward_input_kernel<D, F, T>)(
          p, points, grad_out, grad_points);
      S3D_CUDA_CHECK(cudaGetLastError());
    }
  }
};

template <typename T>
void forward(const Params<T>& p, int n_dims, int n_features, const T* points, T* out,
             void* stream) {
  if (p.n_points == 0) return;
  dispatch_dims(n_dims, n_features, Forward<T>{p, points, out, static_cast<cudaStream_t>(stream)});
}

template <typename T>
void backward(const Params<T>& p, int n_dims, int n_features, const T* points, const T* grad_out,
              T* grad_points, T* grad_table, void* stream) {
  if (p.n_points == 0) return;
  dispatch_dims(
      n_dims, n_features,
      Backward<T>{p, points, grad_out, grad_points, grad_table, static_cast<cudaStream_t>(stream)});
}

template void forward<float>(const Params<float>&, int, int, const float*, float*, void*);
template void forward<double>(const Params<double>&, int, int, const double*, double*, void*);
template void backward<float>(const Params<float>&, int, int, const float*, const float*, float*,
                              float*, void*);
template void backward<double>(const Params<double>&, int, int, const double*, const double*,
                               double*, double*, void*);

}  // namespace cuda
}  // namespace hashgrid
}  // namespace s3d
