// Tensor-level glue of the occupancy-grid marcher, shared by the CPU and CUDA
// registrations (and the emulated CUDA test build): checks, the two-pass
// launch (count, exclusive scan, fill) over a backend's launchers and Guard,
// the schema.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "s3d/occupancy_grid_launchers.h"

namespace s3d_torch {

namespace og = s3d::occupancy;

// Returns (ray_indices (S,) int64, t_starts (S,), t_ends (S,), offsets (R + 1,) int64).
template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> occgrid_march_impl(
    const at::Tensor& bits, const c10::optional<at::Tensor>& block_bits, at::IntArrayRef res,
    at::ArrayRef<double> center, at::ArrayRef<double> half, const at::Tensor& rays_o,
    const at::Tensor& rays_d, const c10::optional<at::Tensor>& grid_indices,
    const at::Tensor& t_near, const at::Tensor& t_far, double step, double cone_angle, bool check) {
  const typename Backend::Guard guard(rays_o.device());
  TORCH_CHECK(bits.dim() == 3 && bits.scalar_type() == at::kByte && bits.is_contiguous(),
              "occgrid_march: bits must be contiguous uint8 (n_grids, levels, bytes)");
  TORCH_CHECK(res.size() == 3 && center.size() == 3 && half.size() == 3,
              "occgrid_march: res, center and half need 3 entries");
  // Cell indices are ints in the kernel; 2^20 per side keeps every product in int64.
  for (int a = 0; a < 3; ++a)
    TORCH_CHECK(res[a] >= 1 && res[a] <= (1 << 20), "occgrid_march: res must hold 3 ints in [1, ",
                1 << 20, "], got ", res);
  TORCH_CHECK(bits.size(0) >= 1, "occgrid_march: bits must hold at least one grid");
  TORCH_CHECK(bits.size(1) >= 1 && bits.size(1) <= og::kMaxLevels, "occgrid_march: 1 to ",
              og::kMaxLevels, " levels");
  // The coarsest box (half x 2^(levels - 1)) stays finite in float32, below the kernel's 1e30.
  const double coarsest = std::ldexp(1.0, static_cast<int>(bits.size(1)) - 1);
  for (int a = 0; a < 3; ++a)
    TORCH_CHECK(
        std::isfinite(center[a]) && half[a] > 0 && std::abs(center[a]) + half[a] * coarsest <= 1e30,
        "occgrid_march: center and half must be finite with half > 0 and the coarsest box "
        "within 1e30, got center ",
        center, ", half ", half);
  TORCH_CHECK(bits.size(2) * 8 >= res[0] * res[1] * res[2], "occgrid_march: bitfield of ",
              bits.size(2), " bytes per level is too small for res ", res);
  TORCH_CHECK(rays_o.dim() == 2 && rays_o.size(1) == 3 && rays_o.is_contiguous() &&
                  rays_d.sizes() == rays_o.sizes() && rays_d.is_contiguous() &&
                  rays_d.scalar_type() == rays_o.scalar_type(),
              "occgrid_march: rays must be contiguous (R, 3) of one dtype");
  TORCH_CHECK(rays_o.scalar_type() == at::kFloat || rays_o.scalar_type() == at::kDouble,
              "occgrid_march: rays must be float32 or float64, got ", rays_o.scalar_type());
  const int64_t n_rays = rays_o.size(0);
  for (const auto* t : {&t_near, &t_far})
    TORCH_CHECK(t->dim() == 1 && t->size(0) == n_rays && t->is_contiguous() &&
                    t->scalar_type() == rays_o.scalar_type(),
                "occgrid_march: t_near/t_far must be contiguous (R,) like the rays");
  for (const auto* t : {&bits, &rays_d, &t_near, &t_far})
    TORCH_CHECK(t->device() == rays_o.device(), "occgrid_march: all tensors on one device");
  if (grid_indices.has_value()) {
    TORCH_CHECK(grid_indices->dim() == 1 && grid_indices->size(0) == n_rays &&
                    grid_indices->scalar_type() == at::kLong && grid_indices->is_contiguous() &&
                    grid_indices->device() == rays_o.device(),
                "occgrid_march: grid_indices must be contiguous int64 (R,)");
    // A device-to-host sync on the GPU: s3d_fast.ops checks first and passes check=false.
    if (check && n_rays > 0) {
      const auto range = at::aminmax(*grid_indices);
      TORCH_CHECK(std::get<0>(range).item<int64_t>() >= 0 &&
                      std::get<1>(range).item<int64_t>() < bits.size(0),
                  "occgrid_march: grid_indices must lie in [0, n_grids=", bits.size(0), ")");
    }
  }
  // A ray crosses the coarsest box in at most diagonal / step steps.
  const double diagonal = 2.0 * coarsest *
                          std::sqrt(half[0] * half[0] + half[1] * half[1] + half[2] * half[2]);
  TORCH_CHECK(std::isfinite(step) && step > 0 && diagonal / step <= og::kMaxStepsPerBox,
              "occgrid_march: step must be finite, > 0 and at least the box diagonal / ",
              og::kMaxStepsPerBox, ", got ", step);
  TORCH_CHECK(std::isfinite(cone_angle) && cone_angle >= 0,
              "occgrid_march: cone_angle must be finite and >= 0, got ", cone_angle);
  int64_t block_res[3];
  for (int a = 0; a < 3; ++a) block_res[a] = (res[a] + og::kBlock - 1) / og::kBlock;
  if (block_bits.has_value())
    TORCH_CHECK(block_bits->dim() == 3 && block_bits->scalar_type() == at::kByte &&
                    block_bits->is_contiguous() && block_bits->size(0) == bits.size(0) &&
                    block_bits->size(1) == bits.size(1) &&
                    block_bits->size(2) * 8 >= block_res[0] * block_res[1] * block_res[2] &&
                    block_bits->device() == rays_o.device(),
                "occgrid_march: block_bits must be uint8 (n_grids, levels, bytes) of ", og::kBlock,
                "^3 blocks");

  const auto long_opts = rays_o.options().dtype(at::kLong);
  at::Tensor counts = at::empty({n_rays}, long_opts);
  at::Tensor ray_indices, t_starts, t_ends, offsets;
  AT_DISPATCH_FLOATING_TYPES(rays_o.scalar_type(), "occgrid_march", [&] {
    og::MarchParams<scalar_t> p{};
    p.bits = bits.data_ptr<uint8_t>();
    p.bytes_per_level = bits.size(2);
    p.levels = static_cast<int>(bits.size(1));
    p.block_bits = block_bits.has_value() ? block_bits->data_ptr<uint8_t>() : nullptr;
    p.block_bytes_per_level = block_bits.has_value() ? block_bits->size(2) : 0;
    for (int a = 0; a < 3; ++a) p.block_res[a] = static_cast<int>(block_res[a]);
    for (int a = 0; a < 3; ++a) {
      p.res[a] = static_cast<int>(res[a]);
      p.center[a] = static_cast<scalar_t>(center[a]);
      p.half[a] = static_cast<scalar_t>(half[a]);
    }
    p.rays_o = rays_o.data_ptr<scalar_t>();
    p.rays_d = rays_d.data_ptr<scalar_t>();
    p.grid_index = grid_indices.has_value() ? grid_indices->data_ptr<int64_t>() : nullptr;
    p.t_near = t_near.data_ptr<scalar_t>();
    p.t_far = t_far.data_ptr<scalar_t>();
    p.step = static_cast<scalar_t>(step);
    p.cone_angle = static_cast<scalar_t>(cone_angle);

    Backend::template march_count<scalar_t>(p, n_rays, counts.data_ptr<int64_t>());
    offsets = at::zeros({n_rays + 1}, long_opts);
    if (n_rays > 0) offsets.narrow(0, 1, n_rays).copy_(at::cumsum(counts, 0));
    const int64_t total = offsets[n_rays].item<int64_t>();
    ray_indices = at::empty({total}, long_opts);
    t_starts = at::empty({total}, rays_o.options());
    t_ends = at::empty({total}, rays_o.options());
    if (total > 0)
      Backend::template march_fill<scalar_t>(
          p, n_rays, offsets.data_ptr<int64_t>(), ray_indices.data_ptr<int64_t>(),
          t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>());
  });
  return {ray_indices, t_starts, t_ends, offsets};
}

// check=false skips the range check of grid_indices (a device-to-host sync
// on the GPU): only for s3d_fast.ops, which checks them itself.
inline void define_occupancy_grid_ops(torch::Library& m) {
  m.def(
      "occgrid_march(Tensor bits, Tensor? block_bits, int[] res, float[] center, float[] half, "
      "Tensor rays_o, Tensor rays_d, Tensor? grid_indices, Tensor t_near, Tensor t_far, "
      "float step, float cone_angle, bool check=True) -> (Tensor, Tensor, Tensor, Tensor)");
}

template <typename Backend>
void impl_occupancy_grid_ops(torch::Library& m) {
  m.impl("occgrid_march", &occgrid_march_impl<Backend>);
}

}  // namespace s3d_torch
