// CUDA launchers of the volume-rendering kernels: one thread per ray over the
// shared bodies (a ray's samples are a contiguous run, so the walk is a
// sequential stream per thread, as in nerfacc's packed kernels).
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/volume_render_launchers.h"

namespace s3d {
namespace volume_render {
namespace cuda {

constexpr int kThreads = 256;

static unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
__global__ void weights_forward_kernel(Input input, int64_t n_rays, const int64_t* offsets,
                                       const T* in, const T* t_starts, const T* t_ends, T* weights,
                                       T* trans, T* alphas) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < n_rays)
    weights_forward_ray(input, offsets[r], offsets[r + 1], in, t_starts, t_ends, weights, trans,
                        alphas);
}

template <typename T>
__global__ void weights_backward_kernel(Input input, int64_t n_rays, const int64_t* offsets,
                                        const T* t_starts, const T* t_ends, const T* trans,
                                        const T* alphas, const T* grad_weights, const T* grad_trans,
                                        const T* grad_alphas, T* grad_in) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < n_rays)
    weights_backward_ray(input, offsets[r], offsets[r + 1], t_starts, t_ends, trans, alphas,
                         grad_weights, grad_trans, grad_alphas, grad_in);
}

template <typename T>
__global__ void composite_forward_kernel(CompositeArgs<T> p, int64_t n_rays, T* colors, T* opacity,
                                         T* depth) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < n_rays) composite_forward_ray(p, r, colors, opacity, depth);
}

template <typename T>
__global__ void composite_backward_kernel(CompositeArgs<T> p, int64_t n_rays, const T* colors,
                                          const T* opacity, const T* depth, const T* grad_colors,
                                          const T* grad_opacity, const T* grad_depth, T* grad_in,
                                          T* grad_values) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < n_rays)
    composite_backward_ray(p, r, colors, opacity, depth, grad_colors, grad_opacity, grad_depth,
                           grad_in, grad_values);
}

template <typename T>
void weights_forward(Input input, int64_t n_rays, const int64_t* offsets, const T* in,
                     const T* t_starts, const T* t_ends, T* weights, T* trans, T* alphas,
                     void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream),
             weights_forward_kernel<T>)(input, n_rays, offsets, in, t_starts, t_ends, weights,
                                        trans, alphas);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void weights_backward(Input input, int64_t n_rays, const int64_t* offsets, const T* t_starts,
                      const T* t_ends, const T* trans, const T* alphas, const T* grad_weights,
                      const T* grad_trans, const T* grad_alphas, T* grad_in, void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream),
             weights_backward_kernel<T>)(input, n_rays, offsets, t_starts, t_ends, trans, alphas,
                                         grad_weights, grad_trans, grad_alphas, grad_in);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void composite_forward(const CompositeArgs<T>& p, int64_t n_rays, T* colors, T* opacity, T* depth,
                       void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream),
             composite_forward_kernel<T>)(p, n_rays, colors, opacity, depth);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void composite_backward(const CompositeArgs<T>& p, int64_t n_rays, const T* colors,
                        const T* opacity, const T* depth, const T* grad_colors,
                        const T* grad_opacity, const T* grad_depth, T* grad_in, T* grad_values,
                        void* stream) {
  if (n_rays == 0) return;
  S3D_LAUNCH(blocks_for(n_rays), kThreads, static_cast<cudaStream_t>(stream),
             composite_backward_kernel<T>)(p, n_rays, colors, opacity, depth, grad_colors,
                                           grad_opacity, grad_depth, grad_in, grad_values);
  S3D_CUDA_CHECK(cudaGetLastError());
}

#define S3D_INSTANTIATE(T)                                                                        \
  template void weights_forward<T>(Input, int64_t, const int64_t*, const T*, const T*, const T*,  \
                                   T*, T*, T*, void*);                                            \
  template void weights_backward<T>(Input, int64_t, const int64_t*, const T*, const T*, const T*, \
                                    const T*, const T*, const T*, const T*, T*, void*);           \
  template void composite_forward<T>(const CompositeArgs<T>&, int64_t, T*, T*, T*, void*);        \
  template void composite_backward<T>(const CompositeArgs<T>&, int64_t, const T*, const T*,       \
                                      const T*, const T*, const T*, const T*, T*, T*, void*);
S3D_INSTANTIATE(float)
S3D_INSTANTIATE(double)
#undef S3D_INSTANTIATE

template <typename I>
__global__ void ray_offsets_kernel(const I* ray_indices, int64_t n_samples, int64_t n_rays,
                                   int64_t* offsets, int* error) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_samples) return;
  const int err = ray_offsets_sample(ray_indices, n_samples, n_rays, i, offsets);
  if (err) atomicOr(error, err);
}

template <typename I>
void ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays, int64_t* offsets,
                 int* error, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (n_samples == 0) {
    S3D_CUDA_CHECK(cudaMemsetAsync(offsets, 0, sizeof(int64_t) * (n_rays + 1), s));
    return;
  }
  S3D_LAUNCH(blocks_for(n_samples), kThreads, s, ray_offsets_kernel<I>)(ray_indices, n_samples,
                                                                        n_rays, offsets, error);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template void ray_offsets<int32_t>(const int32_t*, int64_t, int64_t, int64_t*, int*, void*);
template void ray_offsets<int64_t>(const int64_t*, int64_t, int64_t, int64_t*, int*, void*);

}  // namespace cuda
}  // namespace volume_render
}  // namespace s3d
