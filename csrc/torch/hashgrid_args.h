// Tensor-level glue of the hash-grid ops, shared by the CPU and CUDA
// registrations (and the emulated CUDA test build): argument checks, the
// framework-free parameter block, allocation, the schemas, and the calls into
// a backend's raw-pointer launchers (`Backend` supplies them with its thread
// count or stream). The Python wrapper validates user input with friendly
// messages; these checks guard direct torch.ops callers.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "s3d/hashgrid.h"

namespace s3d_torch {

namespace hg = s3d::hashgrid;

inline void check_hashgrid_inputs(const at::Tensor& points, const at::Tensor& table);

// The backward's output gradient, (N, L*F), checked alike for both devices.
inline void check_hashgrid_grad_out(const at::Tensor& grad_out, const at::Tensor& points,
                                    const at::Tensor& table, int64_t n_levels) {
  TORCH_CHECK(grad_out.is_contiguous() && grad_out.scalar_type() == points.scalar_type() &&
                  grad_out.device() == points.device(),
              "hashgrid: grad_out must be contiguous and match the points' dtype and device");
  TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == points.size(0) &&
                  grad_out.size(1) == n_levels * table.size(1),
              "hashgrid: grad_out must be (N, L*F)");
}

inline void check_hashgrid_inputs(const at::Tensor& points, const at::Tensor& table) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) >= 1 && points.size(1) <= 3,
              "hashgrid: points must be (N, D) with D in 1..3");
  TORCH_CHECK(table.dim() == 2, "hashgrid: table must be (entries, F)");
  const int64_t f = table.size(1);
  TORCH_CHECK(f == 1 || f == 2 || f == 4 || f == 8, "hashgrid: F must be 1, 2, 4 or 8");
  TORCH_CHECK(points.is_contiguous() && table.is_contiguous(),
              "hashgrid: points and table must be contiguous");
  TORCH_CHECK(points.scalar_type() == table.scalar_type(),
              "hashgrid: points and table must share a dtype");
  TORCH_CHECK(points.scalar_type() == at::kFloat || points.scalar_type() == at::kDouble,
              "hashgrid: points must be float32 or float64, got ", points.scalar_type());
  TORCH_CHECK(points.device() == table.device(),
              "hashgrid: points and table must be on one device");
}

template <typename T>
hg::Params<T> make_hashgrid_params(const at::Tensor& points, const at::Tensor& table,
                                   at::IntArrayRef offsets, at::ArrayRef<double> scales,
                                   int64_t interpolation) {
  const int64_t n_levels = static_cast<int64_t>(scales.size());
  TORCH_CHECK(n_levels >= 1 && n_levels <= hg::kMaxLevels, "hashgrid: 1 to ", hg::kMaxLevels,
              " levels");
  TORCH_CHECK(static_cast<int64_t>(offsets.size()) == n_levels + 1,
              "hashgrid: offsets must hold n_levels + 1 entries");
  TORCH_CHECK(offsets[0] == 0 && offsets[n_levels] == table.size(0),
              "hashgrid: offsets must start at 0 and end at the table's entry count");
  TORCH_CHECK(table.size(0) <= 0xFFFFFFFFll, "hashgrid: table too large");
  TORCH_CHECK(interpolation == 0 || interpolation == 1, "hashgrid: bad interpolation");
  const int dims = static_cast<int>(points.size(1));
  hg::Params<T> p{};
  p.layout.n_levels = static_cast<int>(n_levels);
  p.layout.interpolation = static_cast<hg::Interpolation>(interpolation);
  for (int64_t l = 0; l <= n_levels; ++l) p.layout.offset[l] = static_cast<uint32_t>(offsets[l]);
  for (int64_t l = 0; l < n_levels; ++l) {
    TORCH_CHECK(offsets[l + 1] > offsets[l], "hashgrid: every level needs entries");
    const float scale = static_cast<float>(scales[l]);
    // ceil(scale) + 1 must fit the uint32 resolution.
    TORCH_CHECK(std::isfinite(scale) && scale >= 0.f && scale < 4294967040.f,
                "hashgrid: level scale ", scales[l], " is not in [0, 2^32 - 256)");
    const uint32_t res = static_cast<uint32_t>(std::ceil(scale)) + 1;
    p.layout.scale[l] = scale;
    p.layout.resolution[l] = res;
    // Dense while res^D fits the level (64-bit, saturating: no overflow).
    const uint64_t size = static_cast<uint64_t>(offsets[l + 1] - offsets[l]);
    uint64_t dense = 1;
    for (int d = 0; d < dims && dense <= size; ++d) dense *= res;
    p.layout.hashed[l] = dense > size ? 1 : 0;
  }
  p.table = table.data_ptr<T>();
  p.n_points = points.size(0);
  return p;
}

// Backend: Guard (constructed from the points' device), kZeroFilledGrads (its
// launchers add into a zeroed table gradient rather than overwrite it), and
// forward<T> / backward<T> over raw pointers.
template <typename Backend>
at::Tensor hashgrid_forward_impl(const at::Tensor& points, const at::Tensor& table,
                                 at::IntArrayRef offsets, at::ArrayRef<double> scales,
                                 int64_t interpolation) {
  check_hashgrid_inputs(points, table);
  const typename Backend::Guard guard(points.device());
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hashgrid_forward", [&] {
    auto p = make_hashgrid_params<scalar_t>(points, table, offsets, scales, interpolation);
    out = at::empty({points.size(0), p.layout.n_levels * table.size(1)}, points.options());
    Backend::template forward<scalar_t>(p, static_cast<int>(points.size(1)),
                                        static_cast<int>(table.size(1)),
                                        points.data_ptr<scalar_t>(), out.data_ptr<scalar_t>());
  });
  return out;
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor> hashgrid_backward_impl(
    const at::Tensor& grad_out, const at::Tensor& points, const at::Tensor& table,
    at::IntArrayRef offsets, at::ArrayRef<double> scales, int64_t interpolation, bool points_grad,
    bool table_grad) {
  check_hashgrid_inputs(points, table);
  check_hashgrid_grad_out(grad_out, points, table, static_cast<int64_t>(scales.size()));
  const typename Backend::Guard guard(points.device());
  at::Tensor grad_points = points_grad ? at::empty_like(points) : at::Tensor();
  at::Tensor grad_table = !table_grad                 ? at::Tensor()
                          : Backend::kZeroFilledGrads ? at::zeros_like(table)
                                                      : at::empty_like(table);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hashgrid_backward", [&] {
    auto p = make_hashgrid_params<scalar_t>(points, table, offsets, scales, interpolation);
    Backend::template backward<scalar_t>(
        p, static_cast<int>(points.size(1)), static_cast<int>(table.size(1)),
        points.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
        points_grad ? grad_points.data_ptr<scalar_t>() : nullptr,
        table_grad ? grad_table.data_ptr<scalar_t>() : nullptr, points.options());
  });
  return {grad_points, grad_table};
}

inline void define_hashgrid_ops(torch::Library& m) {
  m.def(
      "hashgrid_forward(Tensor points, Tensor table, int[] offsets, float[] scales, "
      "int interpolation) -> Tensor");
  m.def(
      "hashgrid_backward(Tensor grad_out, Tensor points, Tensor table, int[] offsets, "
      "float[] scales, int interpolation, bool points_grad, bool table_grad) -> (Tensor, Tensor)");
}

template <typename Backend>
void impl_hashgrid_ops(torch::Library& m) {
  m.impl("hashgrid_forward", &hashgrid_forward_impl<Backend>);
  m.impl("hashgrid_backward", &hashgrid_backward_impl<Backend>);
}

}  // namespace s3d_torch
