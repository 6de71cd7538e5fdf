// CUDA launchers of the tri-plane kernels: one thread per point (forward,
// point gradients) or per (point, plane, scale) for the plane gradients,
// which are scattered with atomics; in deterministic mode the plane gradients
// are gathered per texel instead (sorted_gather.cuh).
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/triplane_launchers.h"
#include "sorted_gather.cuh"

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

namespace gather = s3d::sorted_gather;

// What backward_plane_point adds for one point to one corner texel of plane k
// (channels [c0, c0 + n)) added to acc, recomputed from the point: the same
// products as the atomic path, so only the summation order differs.
template <typename T>
__device__ void add_corner(const Params<T>& p, const T* points, const T* grad_out, int scale, int k,
                           int64_t i, int corner, int c0, int n, T* acc) {
  const T* xyz = points + i * 3;
  const T* grad_row = grad_out + i * p.out_channels;
  if (p.plane_reduce != PlaneReduce::Product) {
    const Footprint<T> fp = footprint_of(p, scale, k, xyz);
    const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
    const T w = fp.weight[corner] * factor;
    const T* g = grad_slot(p, grad_row, scale, k) + c0;
    for (int c = 0; c < n; ++c) acc[c] += w * g[c];
    return;
  }
  Footprint<T> fp[3];
  point_footprints(p, scale, xyz, fp);
  const int64_t b = i / p.n_points;
  T f[3][kChunk];
  for (int j = 0; j < 3; ++j)
    if (j != k) sample_chunk(plane_base(p, scale, b, j), fp[j], c0, n, f[j]);
  T g[kChunk];
  feature_grad(p, grad_row, scale, k, c0, n, f, g);
  const T w = fp[k].weight[corner];
  for (int c = 0; c < n; ++c) acc[c] += w * g[c];
}

// The contributions of one scale: source = (point i, plane k), destination =
// texel of (batch, plane, y, x), id = (i * 3 + k) * 4 + corner. Corners that
// backward_plane_point skips (zero weight) are not contributions.
template <typename T>
struct PlaneContributions {
  Params<T> p;
  const T* points;
  int scale;
  int64_t n_sources;

  template <typename Emit>
  __device__ void visit(int64_t source, Emit emit) const {
    const int64_t i = source / 3;
    const int k = static_cast<int>(source % 3);
    const int64_t b = i / p.n_points;
    const Footprint<T> fp = footprint_of(p, scale, k, points + i * 3);
    const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
    const int64_t texels = static_cast<int64_t>(p.height[scale]) * p.width[scale];
    for (int corner = 0; corner < 4; ++corner) {
      if (fp.weight[corner] * factor == T(0)) continue;
      emit((b * 3 + k) * texels + fp.offset[corner] / p.channels,
           static_cast<gather::Id>(source) * 4 + corner);
    }
  }
};

// One thread per (texel, channel chunk): the texel's contributions in id
// order (point by point), written once.
template <typename T>
__global__ void gather_planes_kernel(Params<T> p, const T* points, const T* grad_out,
                                     T* grad_plane_scale, int scale, int64_t n_texels,
                                     const gather::Id* run_end, const gather::Id* ids) {
  const int chunks = (p.channels + kChunk - 1) / kChunk;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n_texels * chunks) return;
  const int64_t texel = t / chunks;
  const int c0 = static_cast<int>(t % chunks) * kChunk;
  const int n = p.channels - c0 < kChunk ? p.channels - c0 : kChunk;
  T acc[kChunk];
  for (int c = 0; c < kChunk; ++c) acc[c] = T(0);
  int64_t begin, end;
  gather::run_of(run_end, texel, &begin, &end);
  for (int64_t e = begin; e < end; ++e) {
    const gather::Id id = ids[e];
    const int corner = static_cast<int>(id % 4);
    const int64_t source = static_cast<int64_t>(id / 4);
    add_corner(p, points, grad_out, scale, static_cast<int>(source % 3), source / 3, corner, c0, n,
               acc);
  }
  T* dst = grad_plane_scale + texel * p.channels + c0;
  for (int c = 0; c < n; ++c) dst[c] = acc[c];
}

template <typename T>
int64_t plane_texels(const Params<T>& p, int scale) {
  return p.batch * 3 * static_cast<int64_t>(p.height[scale]) * p.width[scale];
}

template <typename T>
int64_t backward_workspace_bytes(const Params<T>& p, bool deterministic) {
  if (!deterministic || p.channels == 0) return 0;
  int64_t most = 0;  // scales are gathered one after another in one workspace
  for (int s = 0; s < p.n_scales; ++s) {
    const int64_t bytes = gather::workspace_bytes(plane_texels(p, s), p.batch * p.n_points * 12);
    most = bytes > most ? bytes : most;
  }
  return most;
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
              T* const* grad_planes, bool deterministic, void* workspace, void* stream) {
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
    if (!deterministic) {
      S3D_LAUNCH(blocks_for(total * 3), kThreads, s, backward_planes_kernel<T>)(
          p, points, grad_out, grad_planes[scale], scale, total);
      S3D_CUDA_CHECK(cudaGetLastError());
      continue;
    }
    const int64_t texels = plane_texels(p, scale);
    if (texels == 0 || p.channels == 0) continue;
    const gather::Workspace ws = gather::carve(workspace, texels);
    gather::sort_by_destination(PlaneContributions<T>{p, points, scale, total * 3}, texels, ws, s);
    const int64_t threads = texels * ((p.channels + kChunk - 1) / kChunk);
    S3D_LAUNCH(blocks_for(threads), kThreads, s, gather_planes_kernel<T>)(
        p, points, grad_out, grad_planes[scale], scale, texels, ws.run_end, ws.ids);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
}

template void forward<float>(const Params<float>&, const float*, float*, void*);
template void forward<double>(const Params<double>&, const double*, double*, void*);
template int64_t backward_workspace_bytes<float>(const Params<float>&, bool);
template int64_t backward_workspace_bytes<double>(const Params<double>&, bool);
template void backward<float>(const Params<float>&, const float*, const float*, float*,
                              float* const*, bool, void*, void*);
template void backward<double>(const Params<double>&, const double*, const double*, double*,
                               double* const*, bool, void*, void*);

}  // namespace cuda
}  // namespace triplane
}  // namespace s3d
