// CPU launchers of the tri-plane kernels: OpenMP loops over the shared bodies.
#include "s3d/triplane_launchers.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace s3d {
namespace triplane {
namespace cpu {

// Channels per plane-gradient task of the product path: 16 floats are one
// 64-byte line, so two tasks never write the same line of a channels-last plane.
constexpr int kGradBlock = 16;

namespace {

// Calls body.template operator()<kChannels>() with the channel count as a
// compile-time constant for the common widths (fully unrolled vector loops),
// 0 (run time) otherwise.
template <typename Body>
void with_channels(int channels, Body&& body) {
  switch (channels) {
    case 16: body(std::integral_constant<int, 16>()); break;
    case 32: body(std::integral_constant<int, 32>()); break;
    case 64: body(std::integral_constant<int, 64>()); break;
    default: body(std::integral_constant<int, 0>()); break;
  }
}

}  // namespace

// Points per block: the footprints (addresses) of a block are computed
// before any texel is read, so the out-of-order core sees the independent
// loads of many points at once instead of one point's arithmetic at a time.
constexpr int kBlock = 16;

template <typename T>
void forward(const Params<T>& p, const T* points, T* out, int n_threads) {
  const int64_t total = p.batch * p.n_points;
  const int64_t n_blocks = (total + kBlock - 1) / kBlock;
  with_channels(p.channels, [&](auto width) {
    constexpr int kChannels = decltype(width)::value;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (total > 256)
    for (int64_t block = 0; block < n_blocks; ++block) {
      const int64_t first = block * kBlock;
      const int n = static_cast<int>(std::min<int64_t>(kBlock, total - first));
      for (int s = 0; s < p.n_scales; ++s) {
        Footprint<T> fp[kBlock][3];
        for (int j = 0; j < n; ++j) point_footprints(p, s, points + (first + j) * 3, fp[j]);
        for (int j = 0; j < n; ++j) {
          const int64_t i = first + j;
          forward_scale<kChannels>(p, s, i / p.n_points, fp[j], out + i * p.out_channels);
        }
      }
    }
  });
}

namespace {

// One plane (scale, batch item, plane k) whose gradient is being built.
struct PlaneTask {
  int scale, k;
  int64_t b;
};

// The points of a plane bucketed by bilinear cell, so that each texel can
// gather the contributions of the (up to) four cells it is a corner of.
// Cells run from -1 to W-1 (H-1): a point half outside still feeds the
// texels it touches.
template <typename T>
struct CellBuckets {
  struct Entry {
    int64_t point;
    T fx, fy;
  };
  std::vector<int64_t> start;  // (H+1)*(W+1)+1 prefix offsets into entries
  std::vector<Entry> entries;
};

template <typename T>
int64_t cell_of(const Footprint<T>& fp, int height, int width) {
  if (fp.x0 < -1 || fp.x0 > width - 1 || fp.y0 < -1 || fp.y0 > height - 1) return -1;
  if (fp.weight[0] == T(0) && fp.weight[1] == T(0) && fp.weight[2] == T(0) && fp.weight[3] == T(0))
    return -1;
  return static_cast<int64_t>(fp.y0 + 1) * (width + 1) + (fp.x0 + 1);
}

// Counting sort of one batch item's points by cell: stable, so the order in
// which a texel sums its contributions is fixed (deterministic results).
template <typename T>
void bucket_points(const Params<T>& p, const T* points, const PlaneTask& task,
                   CellBuckets<T>* buckets) {
  const int height = p.height[task.scale], width = p.width[task.scale];
  const int64_t n_cells = static_cast<int64_t>(height + 1) * (width + 1);
  using Entry = typename CellBuckets<T>::Entry;
  std::vector<int64_t> cell(p.n_points);
  std::vector<Entry> unsorted(p.n_points);
  std::vector<int64_t>& start = buckets->start;
  start.assign(n_cells + 1, 0);
  const int64_t first = task.b * p.n_points;
  for (int64_t n = 0; n < p.n_points; ++n) {
    const Footprint<T> fp = footprint_of(p, task.scale, task.k, points + (first + n) * 3);
    cell[n] = cell_of(fp, height, width);
    unsorted[n] = {first + n, fp.fx, fp.fy};
    if (cell[n] >= 0) ++start[cell[n] + 1];
  }
  for (int64_t c = 0; c < n_cells; ++c) start[c + 1] += start[c];
  std::vector<int64_t> cursor(start.begin(), start.end() - 1);
  buckets->entries.resize(start[n_cells]);
  for (int64_t n = 0; n < p.n_points; ++n)
    if (cell[n] >= 0) buckets->entries[cursor[cell[n]]++] = unsorted[n];
}

// Gradient of one texel row of a plane: every texel sums, in bucket order,
// weight x upstream gradient over the points of its four neighbouring cells.
// Each texel is written by exactly one thread, with sequential writes.
template <int kChannels, typename T>
void gather_texel_row(const Params<T>& p, const T* grad_out, const PlaneTask& task,
                      const CellBuckets<T>& buckets, int y, T* grad_plane) {
  const int width = p.width[task.scale];
  const int channels = kChannels > 0 ? kChannels : p.channels;
  const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
  const int64_t grad_offset = out_index(p, task.scale, task.k, 0);
  for (int x = 0; x < width; ++x) {
    T* __restrict__ dst = grad_plane + (static_cast<int64_t>(y) * width + x) * channels;
    for (int c = 0; c < channels; ++c) dst[c] = T(0);
    for (int dy = 0; dy < 2; ++dy) {
      for (int dx = 0; dx < 2; ++dx) {
        // This texel is corner (dx, dy) of cell (x - dx, y - dy).
        const int64_t cell = static_cast<int64_t>(y - dy + 1) * (width + 1) + (x - dx + 1);
        for (int64_t e = buckets.start[cell]; e < buckets.start[cell + 1]; ++e) {
          const auto& entry = buckets.entries[e];
          const T wx = dx ? entry.fx : T(1) - entry.fx;
          const T wy = dy ? entry.fy : T(1) - entry.fy;
          const T w = wx * wy * factor;
          const T* __restrict__ g = grad_out + entry.point * p.out_channels + grad_offset;
          for (int c = 0; c < channels; ++c) dst[c] += w * g[c];
        }
      }
    }
  }
}

template <typename T>
void plane_grads_by_gather(const Params<T>& p, const T* points, const T* grad_out,
                           T* const* grad_planes, const std::vector<PlaneTask>& tasks,
                           int n_threads) {
  const int64_t n_tasks = static_cast<int64_t>(tasks.size());
  std::vector<CellBuckets<T>> buckets(tasks.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (int64_t t = 0; t < n_tasks; ++t) bucket_points(p, points, tasks[t], &buckets[t]);

  std::vector<std::pair<int64_t, int>> rows;  // (task, texel row)
  for (int64_t t = 0; t < n_tasks; ++t)
    for (int y = 0; y < p.height[tasks[t].scale]; ++y) rows.push_back({t, y});
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  with_channels(p.channels, [&](auto width) {
    constexpr int kChannels = decltype(width)::value;
#pragma omp parallel for schedule(dynamic, 4) num_threads(n_threads)
    for (int64_t r = 0; r < n_rows; ++r) {
      const PlaneTask& task = tasks[rows[r].first];
      const int64_t texels = static_cast<int64_t>(p.height[task.scale]) * p.width[task.scale];
      T* grad_plane = grad_planes[task.scale] + (task.b * 3 + task.k) * texels * p.channels;
      gather_texel_row<kChannels>(p, grad_out, task, buckets[rows[r].first], rows[r].second,
                                  grad_plane);
    }
  });
}

// The product's upstream gradient needs the other planes' samples at each
// point, so it keeps the point-order scatter, split by channel block.
template <typename T>
void plane_grads_by_scatter(const Params<T>& p, const T* points, const T* grad_out,
                            T* const* grad_planes, const std::vector<PlaneTask>& tasks,
                            int n_threads) {
  struct Block {
    PlaneTask task;
    int c_begin, c_end;
  };
  std::vector<Block> blocks;
  for (const auto& task : tasks)
    for (int c = 0; c < p.channels; c += kGradBlock)
      blocks.push_back({task, c, std::min(c + kGradBlock, p.channels)});
  const int64_t n_blocks = static_cast<int64_t>(blocks.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (int64_t t = 0; t < n_blocks; ++t) {
    const Block block = blocks[t];
    const PlaneTask task = block.task;
    const int64_t texels = static_cast<int64_t>(p.height[task.scale]) * p.width[task.scale];
    T* plane = grad_planes[task.scale] + (task.b * 3 + task.k) * texels * p.channels;
    for (int64_t texel = 0; texel < texels; ++texel)
      for (int c = block.c_begin; c < block.c_end; ++c) plane[texel * p.channels + c] = T(0);
    const int64_t first = task.b * p.n_points, last = first + p.n_points;
    for (int64_t i = first; i < last; ++i)
      backward_plane_point<T, ExclusiveAdd>(p, points, grad_out, grad_planes[task.scale],
                                            task.scale, task.k, i, block.c_begin, block.c_end);
  }
}

}  // namespace

template <typename T>
void backward(const Params<T>& p, const T* points, const T* grad_out, T* grad_points,
              T* const* grad_planes, int n_threads) {
  const int64_t total = p.batch * p.n_points;
  if (grad_points != nullptr) {
    const int64_t n_blocks = (total + kBlock - 1) / kBlock;
    with_channels(p.channels, [&](auto width) {
      constexpr int kChannels = decltype(width)::value;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (total > 256)
      for (int64_t block = 0; block < n_blocks; ++block) {
        const int64_t first = block * kBlock;
        const int n = static_cast<int>(std::min<int64_t>(kBlock, total - first));
        T grad_xyz[kBlock][3] = {};
        for (int s = 0; s < p.n_scales; ++s) {
          Footprint<T> fp[kBlock][3];
          for (int j = 0; j < n; ++j) point_footprints(p, s, points + (first + j) * 3, fp[j]);
          for (int j = 0; j < n; ++j) {
            const int64_t i = first + j;
            backward_coords_scale<kChannels>(p, s, i / p.n_points, fp[j],
                                             grad_out + i * p.out_channels, grad_xyz[j]);
          }
        }
        for (int j = 0; j < n; ++j)
          for (int d = 0; d < 3; ++d) grad_points[(first + j) * 3 + d] = grad_xyz[j][d];
      }
    });
  }

  // Plane gradients without atomics: scattering uniform points into planes
  // larger than the cache is bound by random read-modify-writes, so the points
  // are bucketed by cell and every texel gathers its own sum instead.
  std::vector<PlaneTask> tasks;
  for (int s = 0; s < p.n_scales; ++s) {
    if (grad_planes[s] == nullptr) continue;
    for (int64_t b = 0; b < p.batch; ++b)
      for (int k = 0; k < 3; ++k) tasks.push_back({s, k, b});
  }
  if (tasks.empty()) return;
  if (p.plane_reduce == PlaneReduce::Product)
    plane_grads_by_scatter(p, points, grad_out, grad_planes, tasks, n_threads);
  else
    plane_grads_by_gather(p, points, grad_out, grad_planes, tasks, n_threads);
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
