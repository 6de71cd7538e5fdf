// Deterministic scatter-add for the CUDA backward passes, without float atomics.
//
// A backward that scatters (a point adds to the texels or table entries it read)
// races when threads add to the same destination; float atomics resolve the race
// in whatever order the hardware picks, so the sums change from run to run. Here
// the contributions are sorted by destination first, then each destination sums
// its own in a fixed order (ascending contribution id), one thread per destination:
//   1. count the contributions of each destination (integer atomics: exact);
//   2. exclusive scan of the counts (fixed-order integer sums);
//   3. write every contribution's id into its destination's run (integer atomics
//      claim the slots, so the order inside a run varies ...);
//   4. ... and sort each run by id, which erases that variation;
//   5. the op's gather kernel: one thread per destination walks its run.
// The same ids in the same order give the same bits whatever the scheduling.
//
// `Contributions` supplies n_sources and a __device__ visit(source, emit) that
// calls emit(destination, id) for every contribution of one source (a point at
// one level or on one plane): the ids must be distinct and encode what the
// gather needs to recompute the contribution.
#pragma once

#include <cstdint>

#include "s3d/cuda_check.h"

namespace s3d {
namespace sorted_gather {

using Id = unsigned long long;  // what CUDA's 64-bit atomicAdd takes

constexpr int kThreads = 256;
constexpr int64_t kScanChunk = 1024;  // counts summed by one thread of the scan

inline unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

// The workspace, carved from one caller-allocated buffer (8-byte aligned).
struct Workspace {
  Id* run_end;     // (destinations,) counts, then run starts, then run ends
  Id* chunk_sums;  // (ceil(destinations / kScanChunk),)
  Id* ids;         // (contributions,)
};

inline int64_t workspace_bytes(int64_t n_destinations, int64_t n_contributions) {
  const int64_t chunks = (n_destinations + kScanChunk - 1) / kScanChunk;
  return static_cast<int64_t>(sizeof(Id)) * (n_destinations + chunks + n_contributions);
}

inline Workspace carve(void* buffer, int64_t n_destinations) {
  Id* base = static_cast<Id*>(buffer);
  const int64_t chunks = (n_destinations + kScanChunk - 1) / kScanChunk;
  return {base, base + n_destinations, base + n_destinations + chunks};
}

// Contributions of destination d, after sort_by_destination: ids[begin, end).
__device__ inline void run_of(const Id* run_end, int64_t d, int64_t* begin, int64_t* end) {
  *begin = d == 0 ? 0 : static_cast<int64_t>(run_end[d - 1]);
  *end = static_cast<int64_t>(run_end[d]);
}

template <typename Contributions>
__global__ void count_kernel(Contributions c, Id* counts) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= c.n_sources) return;
  c.visit(s, [&](int64_t destination, Id) { atomicAdd(counts + destination, Id(1)); });
}

static __global__ void chunk_sum_kernel(const Id* counts, int64_t n, Id* chunk_sums) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t begin = t * kScanChunk;
  if (begin >= n) return;
  const int64_t end = begin + kScanChunk < n ? begin + kScanChunk : n;
  Id sum = 0;
  for (int64_t i = begin; i < end; ++i) sum += counts[i];
  chunk_sums[t] = sum;
}

// One thread: the chunk sums are few (destinations / 1024).
static __global__ void chunk_scan_kernel(Id* chunk_sums, int64_t n_chunks) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  Id running = 0;
  for (int64_t t = 0; t < n_chunks; ++t) {
    const Id sum = chunk_sums[t];
    chunk_sums[t] = running;
    running += sum;
  }
}

// counts -> exclusive prefix sums (each destination's run start), in place.
static __global__ void run_start_kernel(Id* counts, int64_t n, const Id* chunk_starts) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t begin = t * kScanChunk;
  if (begin >= n) return;
  const int64_t end = begin + kScanChunk < n ? begin + kScanChunk : n;
  Id running = chunk_starts[t];
  for (int64_t i = begin; i < end; ++i) {
    const Id count = counts[i];
    counts[i] = running;
    running += count;
  }
}

// Each contribution claims the next slot of its run: run starts become run ends.
template <typename Contributions>
__global__ void fill_kernel(Contributions c, Id* run_next, Id* ids) {
  const int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= c.n_sources) return;
  c.visit(s,
          [&](int64_t destination, Id id) { ids[atomicAdd(run_next + destination, Id(1))] = id; });
}

__device__ inline void sift_down(Id* a, int64_t root, int64_t n) {
  for (;;) {
    int64_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && a[child] < a[child + 1]) ++child;
    if (!(a[root] < a[child])) return;
    const Id t = a[root];
    a[root] = a[child];
    a[child] = t;
    root = child;
  }
}

// Heapsort: in place, no recursion, O(n log n) even when every point lands in
// one destination.
static __global__ void sort_runs_kernel(const Id* run_end, int64_t n, Id* ids) {
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= n) return;
  int64_t begin, end;
  run_of(run_end, d, &begin, &end);
  Id* a = ids + begin;
  const int64_t len = end - begin;
  for (int64_t i = len / 2 - 1; i >= 0; --i) sift_down(a, i, len);
  for (int64_t last = len - 1; last > 0; --last) {
    const Id t = a[0];
    a[0] = a[last];
    a[last] = t;
    sift_down(a, 0, last);
  }
}

// Steps 1 to 4 above; then ws.run_end and ws.ids describe every destination's
// contributions in ascending id order (run_of).
template <typename Contributions>
void sort_by_destination(const Contributions& c, int64_t n_destinations, const Workspace& ws,
                         cudaStream_t stream) {
  if (n_destinations == 0) return;  // CUDA refuses a launch of zero blocks
  S3D_CUDA_CHECK(cudaMemsetAsync(ws.run_end, 0, sizeof(Id) * n_destinations, stream));
  if (c.n_sources > 0) {
    S3D_LAUNCH(blocks_for(c.n_sources), kThreads, stream, count_kernel<Contributions>)(c,
                                                                                       ws.run_end);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
  const int64_t chunks = (n_destinations + kScanChunk - 1) / kScanChunk;
  S3D_LAUNCH(blocks_for(chunks), kThreads, stream, chunk_sum_kernel)(ws.run_end, n_destinations,
                                                                     ws.chunk_sums);
  S3D_CUDA_CHECK(cudaGetLastError());
  S3D_LAUNCH(1, 1, stream, chunk_scan_kernel)(ws.chunk_sums, chunks);
  S3D_CUDA_CHECK(cudaGetLastError());
  S3D_LAUNCH(blocks_for(chunks), kThreads, stream, run_start_kernel)(ws.run_end, n_destinations,
                                                                     ws.chunk_sums);
  S3D_CUDA_CHECK(cudaGetLastError());
  if (c.n_sources > 0) {
    S3D_LAUNCH(blocks_for(c.n_sources), kThreads, stream, fill_kernel<Contributions>)(c, ws.run_end,
                                                                                      ws.ids);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
  S3D_LAUNCH(blocks_for(n_destinations), kThreads, stream, sort_runs_kernel)(
      ws.run_end, n_destinations, ws.ids);
  S3D_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sorted_gather
}  // namespace s3d
