// CPU launchers of the tri-plane kernels: OpenMP loops over the shared bodies.
#include "s3d/triplane_launchers.h"

#include <algorithm>
#include <vector>

namespace s3d {
namespace triplane {
namespace cpu {

// Channels per plane-gradient task: 16 floats are one 64-byte cache line, so
// two tasks never write the same line of a channels-last plane.
constexpr int kGradBlock = 16;

template <typename T>
void forward(const Params<T>& p, const T* points, T* out, int n_threads) {
  const int64_t total = p.batch * p.n_points;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (total > 256)
  for (int64_t i = 0; i < total; ++i) forward_point(p, points, out, i);
}

template <typename T>
void backward(const Params<T>& p, const T* points, const T* grad_out, T* grad_points,
              T* const* grad_planes, int n_threads) {
  const int64_t total = p.batch * p.n_points;
  if (grad_points != nullptr) {
#pragma omp parallel for schedule(static) num_threads(n_threads) if (total > 256)
    for (int64_t i = 0; i < total; ++i) backward_point_coords(p, points, grad_out, grad_points, i);
  }

  // Scatter to the planes without atomics: one task per (scale, batch item,
  // plane, channel block); a task walks all points of its batch item in order,
  // so the summation order (and the result) does not depend on scheduling.
  struct Task {
    int scale, k, c_begin, c_end;
    int64_t b;
  };
  std::vector<Task> tasks;
  for (int s = 0; s < p.n_scales; ++s) {
    if (grad_planes[s] == nullptr) continue;
    for (int64_t b = 0; b < p.batch; ++b)
      for (int k = 0; k < 3; ++k)
        for (int c = 0; c < p.channels; c += kGradBlock)
          tasks.push_back({s, k, c, std::min(c + kGradBlock, p.channels), b});
  }
  const int64_t n_tasks = static_cast<int64_t>(tasks.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_tasks > 1 && total > 256)
  for (int64_t t = 0; t < n_tasks; ++t) {
    const Task task = tasks[t];
    const int64_t first = task.b * p.n_points;
    for (int64_t i = first; i < first + p.n_points; ++i)
      backward_plane_point<T, ExclusiveAdd>(p, points, grad_out, grad_planes[task.scale],
                                            task.scale, task.k, i, task.c_begin, task.c_end);
  }
}

template void forward<float>(const Params<float>&, const float*, float*, int);
template void forward<double>(const Params<double>&, const double*, double*, int);
template void backward<float>(const Params<float>&, const float*, const float*, float*,
                              float* const*, int);
template void backward<double>(const Params<double>&, const double*, const double*, double*,
                               double* const*, int);

}  // namespace cpu
}  // namespace triplane
}  // namespace s3d
