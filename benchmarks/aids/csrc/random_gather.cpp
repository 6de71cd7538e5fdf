// Roofline probe of the hash-grid encoding: n random 8-byte gathers from a
// table of float2 entries, with no index stream, so only the gathers touch memory.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>

namespace {

double random_gather(const float* table, uint32_t entries, int64_t n, int n_threads) {
  double total = 0.0;
#pragma omp parallel num_threads(n_threads) reduction(+ : total)
  {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      // A counter hash (murmur3 finaliser): independent addresses.
      uint32_t h = static_cast<uint32_t>(j) * 0x9E3779B1u;
      h ^= h >> 16;
      h *= 0x85EBCA6Bu;
      h ^= h >> 13;
      const uint32_t e = static_cast<uint32_t>((static_cast<uint64_t>(h) * entries) >> 32);
      acc[j & 3] += table[2 * static_cast<int64_t>(e)] + table[2 * static_cast<int64_t>(e) + 1];
    }
    total += acc[0] + acc[1] + acc[2] + acc[3];
  }
  return total;
}

double random_gather_cpu(const at::Tensor& table, int64_t n) {
  TORCH_CHECK(table.dim() == 2 && table.size(1) == 2 && table.is_contiguous() &&
                  table.scalar_type() == at::kFloat && table.size(0) >= 1 &&
                  table.size(0) <= 0xFFFFFFFFll,
              "random_gather: table must be a contiguous (entries, 2) float32 tensor");
  return random_gather(table.data_ptr<float>(), static_cast<uint32_t>(table.size(0)), n,
                       at::get_num_threads());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(s3d_fast_aids, m) { m.def("random_gather(Tensor table, int n) -> float"); }

TORCH_LIBRARY_IMPL(s3d_fast_aids, CPU, m) { m.impl("random_gather", &random_gather_cpu); }
