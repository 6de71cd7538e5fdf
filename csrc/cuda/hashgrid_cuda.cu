// CUDA launchers of the hash-grid kernels. Like tiny-cuda-nn, a block covers
// one level (blockIdx.y) for a run of points, so the threads of a block gather
// from one level's slice of the table; table gradients are scattered with
// atomics (the CPU launchers partition instead), or, in deterministic mode,
// gathered per entry (sorted_gather.cuh).
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/hashgrid_launchers.h"
#include "sorted_gather.cuh"

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

namespace gather = s3d::sorted_gather;

// The table contributions: source = (point i, level), destination = table
// entry, id = (i * L + level) * 2^D + corner, every corner counted (as in the
// atomic scatter, which adds zero weights too).
template <int D, typename T>
struct TableContributions {
  Params<T> p;
  const T* points;
  int64_t n_sources;

  template <typename Emit>
  __device__ void visit(int64_t source, Emit emit) const {
    const int n_levels = p.layout.n_levels;
    const int64_t i = source / n_levels;
    const int level = static_cast<int>(source % n_levels);
    const Level<T> lv = level_of<T>(p.layout, level);
    uint32_t entry[1 << D];
    T weight[1 << D];
    level_corners<D, T>(lv, points + i * D, entry, weight);
    for (int k = 0; k < (1 << D); ++k)
      emit(lv.first_entry + entry[k], (static_cast<gather::Id>(source) << D) + k);
  }
};

// One thread per table entry: its contributions in id order (point by point), written once.
template <int D, int F, typename T>
__global__ void gather_table_kernel(Params<T> p, const T* points, const T* grad_out, T* grad_table,
                                    int64_t n_entries, const gather::Id* run_end,
                                    const gather::Id* ids) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n_entries) return;
  const int n_levels = p.layout.n_levels;
  const int64_t width = static_cast<int64_t>(n_levels) * F;
  T acc[F];
  for (int f = 0; f < F; ++f) acc[f] = T(0);
  int64_t begin, end;
  gather::run_of(run_end, e, &begin, &end);
  for (int64_t r = begin; r < end; ++r) {
    const gather::Id id = ids[r];
    const int k = static_cast<int>(id & ((1u << D) - 1));
    const int64_t source = static_cast<int64_t>(id >> D);
    const int64_t i = source / n_levels;
    const int level = static_cast<int>(source % n_levels);
    uint32_t entry[1 << D];
    T weight[1 << D];
    level_corners<D, T>(level_of<T>(p.layout, level), points + i * D, entry, weight);
    const T* g = grad_out + i * width + level * F;
    for (int f = 0; f < F; ++f) acc[f] += weight[k] * g[f];
  }
  for (int f = 0; f < F; ++f) grad_table[e * F + f] = acc[f];
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
  bool deterministic;
  void* workspace;
  cudaStream_t stream;
  template <int D, int F>
  void operator()() const {
    if (grad_table != nullptr && !deterministic) {
      S3D_LAUNCH(grid_for(p.n_points, p.layout.n_levels), kThreads, stream,
                 backward_table_kernel<D, F, T>)(p, points, grad_out, grad_table);
      S3D_CUDA_CHECK(cudaGetLastError());
    }
    if (grad_table != nullptr && deterministic) {
      const int64_t entries = p.layout.offset[p.layout.n_levels];
      const gather::Workspace ws = gather::carve(workspace, entries);
      gather::sort_by_destination(
          TableContributions<D, T>{p, points, p.n_points * p.layout.n_levels}, entries, ws, stream);
      S3D_LAUNCH(gather::blocks_for(entries), gather::kThreads, stream,
                 gather_table_kernel<D, F, T>)(p, points, grad_out, grad_table, entries, ws.run_end,
                                               ws.ids);
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
int64_t backward_workspace_bytes(const Params<T>& p, int n_dims, bool deterministic) {
  if (!deterministic) return 0;
  const int64_t entries = p.layout.offset[p.layout.n_levels];
  return gather::workspace_bytes(entries, (p.n_points * p.layout.n_levels) << n_dims);
}

template <typename T>
void forward(const Params<T>& p, int n_dims, int n_features, const T* points, T* out,
             void* stream) {
  if (p.n_points == 0) return;
  dispatch_dims(n_dims, n_features, Forward<T>{p, points, out, static_cast<cudaStream_t>(stream)});
}

template <typename T>
void backward(const Params<T>& p, int n_dims, int n_features, const T* points, const T* grad_out,
              T* grad_points, T* grad_table, bool deterministic, void* workspace, void* stream) {
  if (p.n_points == 0) return;
  dispatch_dims(n_dims, n_features,
                Backward<T>{p, points, grad_out, grad_points, grad_table, deterministic, workspace,
                            static_cast<cudaStream_t>(stream)});
}

template void forward<float>(const Params<float>&, int, int, const float*, float*, void*);
template void forward<double>(const Params<double>&, int, int, const double*, double*, void*);
template int64_t backward_workspace_bytes<float>(const Params<float>&, int, bool);
template int64_t backward_workspace_bytes<double>(const Params<double>&, int, bool);
template void backward<float>(const Params<float>&, int, int, const float*, const float*, float*,
                              float*, bool, void*, void*);
template void backward<double>(const Params<double>&, int, int, const double*, const double*,
                               double*, double*, bool, void*, void*);

}  // namespace cuda
}  // namespace hashgrid
}  // namespace s3d
