// CPU launchers of the volume-rendering kernels: OpenMP loops over rays.
//
// Rays carry different sample counts (the occupancy grid skips empty space),
// so rays are handed out dynamically in blocks; each ray is written by one
// thread only, so the results do not depend on the schedule.
#include "s3d/volume_render_launchers.h"

#include <cstdint>
#include <type_traits>

namespace s3d {
namespace volume_render {
namespace cpu {

constexpr int kRayBlock = 64;
// Below this many rays a parallel region costs more than it saves.
constexpr int64_t kMinParallelRays = 256;

template <typename T>
void weights_forward(Input input, int64_t n_rays, const int64_t* offsets, const T* in,
                     const T* t_starts, const T* t_ends, T* weights, T* trans, T* alphas,
                     int n_threads) {
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
  for (int64_t r = 0; r < n_rays; ++r)
    weights_forward_ray(input, offsets[r], offsets[r + 1], in, t_starts, t_ends, weights, trans,
                        alphas);
}

template <typename T>
void weights_backward(Input input, int64_t n_rays, const int64_t* offsets, const T* t_starts,
                      const T* t_ends, const T* trans, const T* alphas, const T* grad_weights,
                      const T* grad_trans, const T* grad_alphas, T* grad_in, int n_threads) {
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
  for (int64_t r = 0; r < n_rays; ++r)
    weights_backward_ray(input, offsets[r], offsets[r + 1], t_starts, t_ends, trans, alphas,
                         grad_weights, grad_trans, grad_alphas, grad_in);
}

namespace {

// Calls body(std::integral_constant<int, K>) with the channel count as a
// compile-time constant for the common widths, 0 (run time) otherwise.
template <typename Body>
void with_channels(int64_t channels, Body&& body) {
  switch (channels) {
    case 3: body(std::integral_constant<int, 3>()); break;
    case 16: body(std::integral_constant<int, 16>()); break;
    case 32: body(std::integral_constant<int, 32>()); break;
    case 64: body(std::integral_constant<int, 64>()); break;
    default: body(std::integral_constant<int, 0>()); break;
  }
}

}  // namespace

template <typename T>
void composite_forward(const CompositeArgs<T>& p, int64_t n_rays, T* colors, T* opacity, T* depth,
                       int n_threads) {
  with_channels(p.channels, [&](auto width) {
    constexpr int K = decltype(width)::value;
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
    for (int64_t r = 0; r < n_rays; ++r) composite_forward_ray<K>(p, r, colors, opacity, depth);
  });
}

template <typename T>
void composite_backward(const CompositeArgs<T>& p, int64_t n_rays, const T* colors,
                        const T* opacity, const T* depth, const T* grad_colors,
                        const T* grad_opacity, const T* grad_depth, T* grad_in, T* grad_values,
                        int n_threads) {
  with_channels(p.channels, [&](auto width) {
    constexpr int K = decltype(width)::value;
#pragma omp parallel for schedule(dynamic, kRayBlock) \
    num_threads(n_threads) if (n_rays > kMinParallelRays)
    for (int64_t r = 0; r < n_rays; ++r)
      composite_backward_ray<K>(p, r, colors, opacity, depth, grad_colors, grad_opacity, grad_depth,
                                grad_in, grad_values);
  });
}

#define S3D_INSTANTIATE(T)                                                                        \
  template void weights_forward<T>(Input, int64_t, const int64_t*, const T*, const T*, const T*,  \
                                   T*, T*, T*, int);                                              \
  template void weights_backward<T>(Input, int64_t, const int64_t*, const T*, const T*, const T*, \
                                    const T*, const T*, const T*, const T*, T*, int);             \
  template void composite_forward<T>(const CompositeArgs<T>&, int64_t, T*, T*, T*, int);          \
  template void composite_backward<T>(const CompositeArgs<T>&, int64_t, const T*, const T*,       \
                                      const T*, const T*, const T*, const T*, T*, T*, int);
S3D_INSTANTIATE(float)
S3D_INSTANTIATE(double)
#undef S3D_INSTANTIATE

// The offsets scan is one read per sample (about 1 ms per 2^20 samples on
// one core); a parallel region only pays off for much larger inputs.
constexpr int64_t kMinParallelSamples = int64_t(1) << 22;

template <typename I>
int ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays, int64_t* offsets,
                int n_threads) {
  if (n_samples == 0) {
    for (int64_t r = 0; r <= n_rays; ++r) offsets[r] = 0;
    return 0;
  }
  int error = 0;
#pragma omp parallel for schedule(static) num_threads(n_threads) \
    reduction(| : error) if (n_samples > kMinParallelSamples)
  for (int64_t i = 0; i < n_samples; ++i)
    error |= ray_offsets_sample(ray_indices, n_samples, n_rays, i, offsets);
  return error;
}

template int ray_offsets<int32_t>(const int32_t*, int64_t, int64_t, int64_t*, int);
template int ray_offsets<int64_t>(const int64_t*, int64_t, int64_t, int64_t*, int);

}  // namespace cpu
}  // namespace volume_render
}  // namespace s3d
