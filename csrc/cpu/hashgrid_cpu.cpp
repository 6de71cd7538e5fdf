// CPU launchers of the hash-grid kernels: OpenMP loops over the shared bodies.
#include <algorithm>
#include <memory>
#include <vector>

#include "s3d/hashgrid_launchers.h"

namespace s3d {
namespace hashgrid {
namespace cpu {

// Points per forward task. Inside a task the loop runs level by level, so the
// gathers of one level (a <= 4 MB slice for 2^19 x 2 floats) stay on the same
// pages and cache sets for a while (fewer TLB misses than point by point over
// a 50 MB table), while the block's output rows (kBlock * L * F floats)
// stay in L2 between the level passes.
constexpr int64_t kBlock = 1024;

// Points whose corner addresses are computed (and prefetched) before any of
// their gathers: the loads of a whole chunk are in flight at once instead of
// whatever the out-of-order window reaches.
constexpr int kChunk = 16;

// Corner entries and weights of points [c0, c0 + m) at one level, each
// corner's table row prefetched (for writing when `for_write`).
template <int D, int F, typename T>
void chunk_corners(const Level<T>& lv, const T* table, const T* points, int64_t c0, int m,
                   bool for_write, uint32_t (*entry)[1 << D], T (*weight)[1 << D]) {
  for (int j = 0; j < m; ++j) {
    level_corners<D, T>(lv, points + (c0 + j) * D, entry[j], weight[j]);
    for (int k = 0; k < (1 << D); ++k) {
      const T* row = table + static_cast<int64_t>(entry[j][k]) * F;
      if (for_write)
        __builtin_prefetch(row, 1);
      else
        __builtin_prefetch(row);
    }
  }
}

template <int D, int F, typename T>
void forward_range_level(const Params<T>& p, int level, const T* points, T* out, int64_t begin,
                         int64_t end, int64_t width) {
  const Level<T> lv = level_of<T>(p.layout, level);
  const T* table = p.table + lv.first_entry * F;
  uint32_t entry[kChunk][1 << D];
  T weight[kChunk][1 << D];
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kChunk, end - c0));
    chunk_corners<D, F, T>(lv, table, points, c0, m, false, entry, weight);
    for (int j = 0; j < m; ++j)
      gather_corners<D, F, T>(table, entry[j], weight[j], out + (c0 + j) * width + level * F);
  }
}

// The table scatter of one level over points [begin, end), same chunking:
// addresses first (prefetched for writing), then the read-modify-writes in
// point order, so the summation order is that of a plain loop.
template <int D, int F, typename T>
void backward_table_range_level(const Params<T>& p, int level, const T* points, const T* g,
                                T* grad_table, int64_t begin, int64_t end, uint32_t lo,
                                uint32_t hi) {
  const Level<T> lv = level_of<T>(p.layout, level);
  T* table = grad_table + lv.first_entry * F;
  uint32_t entry[kChunk][1 << D];
  T weight[kChunk][1 << D];
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kChunk, end - c0));
    chunk_corners<D, F, T>(lv, table, points, c0, m, true, entry, weight);
    for (int j = 0; j < m; ++j)
      scatter_corners<D, F, T, ExclusiveAdd>(table, entry[j], weight[j], g + (c0 + j) * F, lo, hi);
  }
}

// Input gradients of one level over points [begin, end), accumulated into
// grad_points: the table reads of a chunk are prefetched, then
// backward_input_level does the arithmetic (its reads now hit the cache).
template <int D, int F, typename T>
void backward_input_range_level(const Params<T>& p, int level, const T* points, const T* grad_out,
                                T* grad_points, int64_t begin, int64_t end, int64_t width) {
  const Level<T> lv = level_of<T>(p.layout, level);
  const T* table = p.table + lv.first_entry * F;
  uint32_t entry[kChunk][1 << D];
  T weight[kChunk][1 << D];
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int m = static_cast<int>(std::min<int64_t>(kChunk, end - c0));
    chunk_corners<D, F, T>(lv, table, points, c0, m, false, entry, weight);
    for (int j = 0; j < m; ++j) {
      const int64_t i = c0 + j;
      backward_input_level<D, F, T>(p, level, points + i * D, grad_out + i * width + level * F,
                                    grad_points + i * D);
    }
  }
}

template <typename T>
struct Forward {
  const Params<T>& p;
  const T* points;
  T* out;
  int n_threads;

  template <int D, int F>
  void operator()() const {
    const int64_t n = p.n_points;
    const int n_levels = p.layout.n_levels;
    const int64_t width = static_cast<int64_t>(n_levels) * F;
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_blocks > 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t end = std::min(n, (b + 1) * kBlock);
      for (int level = 0; level < n_levels; ++level)
        forward_range_level<D, F, T>(p, level, points, out, b * kBlock, end, width);
    }
  }
};

template <typename T>
struct Backward {
  const Params<T>& p;
  const T* points;
  const T* grad_out;
  T* grad_points;
  T* grad_table;
  int n_threads;

  template <int D, int F>
  void operator()() const {
    const int64_t n = p.n_points;
    const int n_levels = p.layout.n_levels;
    const int64_t width = static_cast<int64_t>(n_levels) * F;
    if (grad_points != nullptr) {
      // Blocked and level by level, like the forward; levels are summed in
      // order per point, so the result does not depend on the threads.
      const int64_t n_blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_blocks > 1)
      for (int64_t b = 0; b < n_blocks; ++b) {
        const int64_t begin = b * kBlock, end = std::min(n, (b + 1) * kBlock);
        for (int64_t i = begin; i < end; ++i)
          for (int d = 0; d < D; ++d) grad_points[i * D + d] = T(0);
        for (int level = 0; level < n_levels; ++level)
          backward_input_range_level<D, F, T>(p, level, points, grad_out, grad_points, begin, end,
                                              width);
      }
    }
    if (grad_table == nullptr) return;

    // Scatter to the table without atomics: a task owns one level (or, when
    // there are more threads than levels, one contiguous range of a level's
    // entries) and walks all points in order. Each entry has one writer and
    // a fixed summation order, so the result does not depend on scheduling
    // or on the thread count (a range split only filters writes). Finest
    // levels (largest, hashed) go first so dynamic scheduling balances.
    const int parts = std::max(1, (n_threads + n_levels - 1) / n_levels);
    struct Task {
      int level;
      uint32_t lo, hi;
    };
    std::vector<Task> tasks;
    for (int level = n_levels - 1; level >= 0; --level) {
      const uint32_t size = p.layout.offset[level + 1] - p.layout.offset[level];
      const uint32_t step = (size + parts - 1) / parts;
      for (int k = 0; k < parts; ++k) {
        const uint32_t lo = std::min<uint64_t>(size, static_cast<uint64_t>(k) * step);
        const uint32_t hi = std::min<uint64_t>(size, static_cast<uint64_t>(k + 1) * step);
        if (lo < hi) tasks.push_back({level, lo, hi});
      }
    }
    // A task reads one level's F values from every output-gradient row; in
    // the (N, L*F) layout that drags the whole row's cache lines through the
    // core once per level (L times the tensor). Transposing to (L, N, F)
    // first costs one pass and makes every level's read contiguous.
    std::unique_ptr<T[]> level_major(new T[static_cast<size_t>(n) * width]);  // no zero fill
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n > 256)
    for (int64_t i = 0; i < n; ++i)
      for (int level = 0; level < n_levels; ++level)
        for (int f = 0; f < F; ++f)
          level_major[(level * n + i) * F + f] = grad_out[i * width + level * F + f];

    const int64_t n_tasks = static_cast<int64_t>(tasks.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_tasks > 1)
    for (int64_t t = 0; t < n_tasks; ++t) {
      const Task task = tasks[t];
      // The task zero-fills its own range first: no serial memset of the
      // whole gradient, and its pages are first touched by their user.
      T* own = grad_table + (static_cast<int64_t>(p.layout.offset[task.level]) + task.lo) * F;
      std::fill(own, own + static_cast<int64_t>(task.hi - task.lo) * F, T(0));
      const T* g = level_major.get() + task.level * n * F;
      backward_table_range_level<D, F, T>(p, task.level, points, g, grad_table, 0, n, task.lo,
                                          task.hi);
    }
  }
};

template <typename T>
void forward(const Params<T>& p, int n_dims, int n_features, const T* points, T* out,
             int n_threads) {
  if (p.n_points == 0) return;
  dispatch_dims(n_dims, n_features, Forward<T>{p, points, out, n_threads});
}

template <typename T>
void backward(const Params<T>& p, int n_dims, int n_features, const T* points, const T* grad_out,
              T* grad_points, T* grad_table, int n_threads) {
  // No early return for N = 0: the table gradient must still be zero-filled.
  dispatch_dims(n_dims, n_features,
                Backward<T>{p, points, grad_out, grad_points, grad_table, n_threads});
}

template void forward<float>(const Params<float>&, int, int, const float*, float*, int);
template void forward<double>(const Params<double>&, int, int, const double*, double*, int);
template void backward<float>(const Params<float>&, int, int, const float*, const float*, float*,
                              float*, int);
template void backward<double>(const Params<double>&, int, int, const double*, const double*,
                               double*, double*, int);

}  // namespace cpu
}  // namespace hashgrid
}  // namespace s3d
