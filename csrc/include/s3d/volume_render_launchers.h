// Entry points of the volume-rendering kernels: raw pointers, no framework
// types. Every launcher parallelises over rays (samples [offsets[r],
// offsets[r + 1]) belong to ray r); outputs have exactly one writer.
#pragma once

#include "s3d/volume_render.h"

namespace s3d {
namespace volume_render {

namespace cpu {
template <typename T>
void weights_forward(Input input, int64_t n_rays, const int64_t* offsets, const T* in,
                     const T* t_starts, const T* t_ends, T* weights, T* trans, T* alphas,
                     int n_threads);
template <typename T>
void weights_backward(Input input, int64_t n_rays, const int64_t* offsets, const T* t_starts,
                      const T* t_ends, const T* trans, const T* alphas, const T* grad_weights,
                      const T* grad_trans, const T* grad_alphas, T* grad_in, int n_threads);
template <typename T>
void composite_forward(const CompositeArgs<T>& p, int64_t n_rays, T* colors, T* opacity, T* depth,
                       int n_threads);
template <typename T>
void composite_backward(const CompositeArgs<T>& p, int64_t n_rays, const T* colors,
                        const T* opacity, const T* depth, const T* grad_colors,
                        const T* grad_opacity, const T* grad_depth, T* grad_in, T* grad_values,
                        int n_threads);
// offsets: (n_rays + 1); returns the OR of the per-sample error bits.
template <typename I>
int ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays, int64_t* offsets,
                int n_threads);
}  // namespace cpu

namespace cuda {
// `stream` is a cudaStream_t. Same contracts as the CPU launchers.
template <typename T>
void weights_forward(Input input, int64_t n_rays, const int64_t* offsets, const T* in,
                     const T* t_starts, const T* t_ends, T* weights, T* trans, T* alphas,
                     void* stream);
template <typename T>
void weights_backward(Input input, int64_t n_rays, const int64_t* offsets, const T* t_starts,
                      const T* t_ends, const T* trans, const T* alphas, const T* grad_weights,
                      const T* grad_trans, const T* grad_alphas, T* grad_in, void* stream);
template <typename T>
void composite_forward(const CompositeArgs<T>& p, int64_t n_rays, T* colors, T* opacity, T* depth,
                       void* stream);
template <typename T>
void composite_backward(const CompositeArgs<T>& p, int64_t n_rays, const T* colors,
                        const T* opacity, const T* depth, const T* grad_colors,
                        const T* grad_opacity, const T* grad_depth, T* grad_in, T* grad_values,
                        void* stream);
// error: one device int, OR-ed with the per-sample error bits.
template <typename I>
void ray_offsets(const I* ray_indices, int64_t n_samples, int64_t n_rays, int64_t* offsets,
                 int* error, void* stream);
}  // namespace cuda

}  // namespace volume_render
}  // namespace s3d
