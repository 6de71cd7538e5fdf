// Tensor-level glue of the volume-rendering ops, shared by the CPU and CUDA
// registrations (and the emulated CUDA test build): argument checks,
// allocation, the schemas, and the calls into a backend's raw-pointer
// launchers (`Backend` supplies them with its thread count or stream, a Guard
// constructed from the samples' device, and prepares fresh output buffers).
// The Python wrappers validate user input with friendly messages; these
// checks guard direct torch.ops callers.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "s3d/volume_render_launchers.h"

namespace s3d_torch {

namespace vr = s3d::volume_render;

inline void check_samples(const char* op, const at::Tensor& offsets, const at::Tensor& in,
                          const c10::optional<at::Tensor>& t_starts,
                          const c10::optional<at::Tensor>& t_ends, int64_t input_kind) {
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1 && offsets.scalar_type() == at::kLong &&
                  offsets.is_contiguous(),
              op, ": offsets must be a contiguous int64 (n_rays + 1,) tensor");
  TORCH_CHECK(offsets.device() == in.device(), op, ": offsets and samples must share a device");
  TORCH_CHECK(in.dim() == 1 && in.is_contiguous(), op,
              ": per-sample input must be contiguous (S,)");
  TORCH_CHECK(in.scalar_type() == at::kFloat || in.scalar_type() == at::kDouble, op,
              ": per-sample input must be float32 or float64, got ", in.scalar_type());
  TORCH_CHECK(input_kind >= 0 && input_kind <= 2, op, ": bad input kind");
  const bool need_t = input_kind == static_cast<int64_t>(vr::Input::Density);
  TORCH_CHECK(!need_t || (t_starts.has_value() && t_ends.has_value()), op,
              ": densities need t_starts and t_ends");
  TORCH_CHECK(t_starts.has_value() == t_ends.has_value(), op,
              ": give both t_starts and t_ends or neither");
  for (const auto* t : {&t_starts, &t_ends}) {
    if (!t->has_value()) continue;
    const at::Tensor& x = **t;
    TORCH_CHECK(x.sizes() == in.sizes() && x.is_contiguous() &&
                    x.scalar_type() == in.scalar_type() && x.device() == in.device(),
                op, ": t_starts/t_ends must be contiguous (S,) tensors like the input");
  }
}

// The values of the offsets: start at 0, never decrease, end at the sample
// count. On the GPU this costs a device-to-host sync, so the Python layer,
// which builds or validates its offsets itself, passes check=false.
inline void check_offsets(const char* op, const at::Tensor& offsets, int64_t n_samples,
                          bool check) {
  if (!check) return;
  const int64_t n = offsets.size(0);
  bool ok;
  if (offsets.device().is_cpu()) {
    const int64_t* o = offsets.data_ptr<int64_t>();
    ok = o[0] == 0 && o[n - 1] == n_samples;
    for (int64_t r = 0; ok && r + 1 < n; ++r) ok = o[r] <= o[r + 1];
  } else {
    const auto steps = offsets.narrow(0, 1, n - 1) - offsets.narrow(0, 0, n - 1);
    const auto bad = offsets.narrow(0, 0, 1).ne(0).sum() +
                     offsets.narrow(0, n - 1, 1).ne(n_samples).sum() + steps.lt(0).sum();
    ok = bad.item<int64_t>() == 0;
  }
  TORCH_CHECK(ok, op, ": offsets must start at 0, never decrease and end at the sample count ",
              n_samples);
}

// A saved tensor or incoming gradient of a backward: shape, dtype and device
// of `like`, contiguous.
inline void check_like(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef sizes,
                       const at::Tensor& like) {
  TORCH_CHECK(t.sizes() == sizes, op, ": ", name, " has shape ", t.sizes(), ", expected ", sizes);
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), op, ": ", name, " is ", t.scalar_type(),
              ", expected ", like.scalar_type());
  TORCH_CHECK(t.device() == like.device(), op, ": ", name, " is on ", t.device(), ", expected ",
              like.device());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

template <typename T>
const T* ptr_or_null(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor> weights_forward_impl(
    const at::Tensor& offsets, const at::Tensor& in, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, int64_t input_kind, bool check) {
  const typename Backend::Guard guard(in.device());
  check_samples("render_weight", offsets, in, t_starts, t_ends, input_kind);
  check_offsets("render_weight", offsets, in.size(0), check);
  auto weights = at::empty_like(in), trans = at::empty_like(in), alphas = at::empty_like(in);
  for (const auto* t : {&weights, &trans, &alphas}) Backend::prepare_output(*t);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "render_weight_forward", [&] {
    Backend::template weights_forward<scalar_t>(
        static_cast<vr::Input>(input_kind), offsets.size(0) - 1, offsets.data_ptr<int64_t>(),
        in.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(t_starts), ptr_or_null<scalar_t>(t_ends),
        weights.data_ptr<scalar_t>(), trans.data_ptr<scalar_t>(), alphas.data_ptr<scalar_t>());
  });
  return {weights, trans, alphas};
}

inline c10::optional<at::Tensor> contiguous_or_none(const c10::optional<at::Tensor>& t) {
  if (!t.has_value() || !t->defined()) return c10::nullopt;
  return t->contiguous();
}

template <typename Backend>
at::Tensor weights_backward_impl(
    const at::Tensor& offsets, const c10::optional<at::Tensor>& t_starts,
    const c10::optional<at::Tensor>& t_ends, const at::Tensor& trans, const at::Tensor& alphas,
    const c10::optional<at::Tensor>& grad_weights, const c10::optional<at::Tensor>& grad_trans,
    const c10::optional<at::Tensor>& grad_alphas, int64_t input_kind, bool check) {
  const typename Backend::Guard guard(alphas.device());
  check_samples("render_weight", offsets, alphas, t_starts, t_ends, input_kind);
  check_like("render_weight", "trans", trans, alphas.sizes(), alphas);
  check_offsets("render_weight", offsets, alphas.size(0), check);
  auto gw = contiguous_or_none(grad_weights), gt = contiguous_or_none(grad_trans),
       ga = contiguous_or_none(grad_alphas);
  check_like("render_weight", "grad_weights", gw.value_or(alphas), alphas.sizes(), alphas);
  check_like("render_weight", "grad_trans", gt.value_or(alphas), alphas.sizes(), alphas);
  check_like("render_weight", "grad_alphas", ga.value_or(alphas), alphas.sizes(), alphas);
  auto grad_in = at::empty_like(alphas);
  AT_DISPATCH_FLOATING_TYPES(alphas.scalar_type(), "render_weight_backward", [&] {
    Backend::template weights_backward<scalar_t>(
        static_cast<vr::Input>(input_kind), offsets.size(0) - 1, offsets.data_ptr<int64_t>(),
        ptr_or_null<scalar_t>(t_starts), ptr_or_null<scalar_t>(t_ends), trans.data_ptr<scalar_t>(),
        alphas.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(gw), ptr_or_null<scalar_t>(gt),
        ptr_or_null<scalar_t>(ga), grad_in.data_ptr<scalar_t>());
  });
  return grad_in;
}

template <typename T>
vr::CompositeArgs<T> composite_args(const at::Tensor& offsets, const at::Tensor& in,
                                    const at::Tensor& values,
                                    const c10::optional<at::Tensor>& t_starts,
                                    const c10::optional<at::Tensor>& t_ends, int64_t input_kind,
                                    double early_stop_eps) {
  vr::CompositeArgs<T> p{};
  p.input = static_cast<vr::Input>(input_kind);
  p.offsets = offsets.data_ptr<int64_t>();
  p.in = in.data_ptr<T>();
  p.t_starts = ptr_or_null<T>(t_starts);
  p.t_ends = ptr_or_null<T>(t_ends);
  p.values = values.size(1) > 0 ? values.data_ptr<T>() : nullptr;
  p.channels = values.size(1);
  p.early_stop_eps = static_cast<T>(early_stop_eps);
  return p;
}

inline void check_composite(const at::Tensor& offsets, const at::Tensor& in,
                            const at::Tensor& values, const c10::optional<at::Tensor>& t_starts,
                            const c10::optional<at::Tensor>& t_ends, int64_t input_kind,
                            double early_stop_eps, bool check) {
  check_samples("composite", offsets, in, t_starts, t_ends, input_kind);
  TORCH_CHECK(values.dim() == 2 && values.size(0) == in.size(0) && values.is_contiguous() &&
                  values.scalar_type() == in.scalar_type() && values.device() == in.device(),
              "composite: values must be a contiguous (S, C) tensor like the input");
  TORCH_CHECK(early_stop_eps >= 0, "composite: early_stop_eps must be >= 0, got ", early_stop_eps);
  check_offsets("composite", offsets, in.size(0), check);
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor> composite_forward_impl(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, bool check) {
  const typename Backend::Guard guard(in.device());
  check_composite(offsets, in, values, t_starts, t_ends, input_kind, early_stop_eps, check);
  const int64_t n_rays = offsets.size(0) - 1;
  at::Tensor colors, opacity, depth;
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "composite_forward", [&] {
    auto p = composite_args<scalar_t>(offsets, in, values, t_starts, t_ends, input_kind,
                                      early_stop_eps);
    colors = at::empty({n_rays, values.size(1)}, in.options());
    opacity = at::empty({n_rays}, in.options());
    depth = at::empty({n_rays}, in.options());  // every ray writes its depth
    Backend::template composite_forward<scalar_t>(p, n_rays, colors.data_ptr<scalar_t>(),
                                                  opacity.data_ptr<scalar_t>(),
                                                  depth.data_ptr<scalar_t>());
  });
  return {colors, opacity, depth};
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor> composite_backward_impl(
    const at::Tensor& offsets, const at::Tensor& in, const at::Tensor& values,
    const c10::optional<at::Tensor>& t_starts, const c10::optional<at::Tensor>& t_ends,
    int64_t input_kind, double early_stop_eps, const at::Tensor& colors, const at::Tensor& opacity,
    const at::Tensor& depth, const c10::optional<at::Tensor>& grad_colors,
    const c10::optional<at::Tensor>& grad_opacity, const c10::optional<at::Tensor>& grad_depth,
    bool input_grad, bool values_grad, bool check) {
  const typename Backend::Guard guard(in.device());
  check_composite(offsets, in, values, t_starts, t_ends, input_kind, early_stop_eps, check);
  const int64_t n_rays = offsets.size(0) - 1;
  const std::vector<int64_t> ray_colors = {n_rays, values.size(1)}, per_ray = {n_rays};
  check_like("composite", "colors", colors, ray_colors, in);
  check_like("composite", "opacity", opacity, per_ray, in);
  check_like("composite", "depth", depth, per_ray, in);
  auto gc = contiguous_or_none(grad_colors), go = contiguous_or_none(grad_opacity),
       gd = contiguous_or_none(grad_depth);
  check_like("composite", "grad_colors", gc.value_or(colors), ray_colors, in);
  check_like("composite", "grad_opacity", go.value_or(opacity), per_ray, in);
  check_like("composite", "grad_depth", gd.value_or(depth), per_ray, in);
  at::Tensor grad_in = input_grad ? at::empty_like(in) : at::Tensor();
  at::Tensor grad_values = values_grad ? at::empty_like(values) : at::Tensor();
  Backend::prepare_output(grad_values);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "composite_backward", [&] {
    auto p = composite_args<scalar_t>(offsets, in, values, t_starts, t_ends, input_kind,
                                      early_stop_eps);
    Backend::template composite_backward<scalar_t>(
        p, n_rays, colors.data_ptr<scalar_t>(), opacity.data_ptr<scalar_t>(),
        depth.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(gc), ptr_or_null<scalar_t>(go),
        ptr_or_null<scalar_t>(gd), input_grad ? grad_in.data_ptr<scalar_t>() : nullptr,
        values_grad && values.size(1) > 0 ? grad_values.data_ptr<scalar_t>() : nullptr);
  });
  return {grad_in, grad_values};
}

// (offsets (n_rays + 1,) int64, error bits) for sorted packed ray indices.
template <typename Backend>
std::tuple<at::Tensor, int64_t> ray_offsets_impl(const at::Tensor& ray_indices, int64_t n_rays) {
  const typename Backend::Guard guard(ray_indices.device());
  TORCH_CHECK(ray_indices.dim() == 1 && ray_indices.is_contiguous() &&
                  (ray_indices.scalar_type() == at::kInt || ray_indices.scalar_type() == at::kLong),
              "ray_offsets: ray_indices must be a contiguous int32/int64 (S,) tensor");
  TORCH_CHECK(n_rays >= 0, "ray_offsets: n_rays must be >= 0");
  auto offsets = at::empty({n_rays + 1}, ray_indices.options().dtype(at::kLong));
  int64_t error = 0;
  if (ray_indices.scalar_type() == at::kInt)
    error = Backend::ray_offsets(ray_indices.data_ptr<int32_t>(), ray_indices.size(0), n_rays,
                                 offsets);
  else
    error = Backend::ray_offsets(ray_indices.data_ptr<int64_t>(), ray_indices.size(0), n_rays,
                                 offsets);
  return {offsets, error};
}

// check=false skips the offsets' values (a device-to-host sync on the GPU):
// only for s3d_fast.ops, which builds or validates its offsets itself.
inline void define_volume_render_ops(torch::Library& m) {
  m.def("ray_offsets(Tensor ray_indices, int n_rays) -> (Tensor, int)");
  m.def(
      "render_weight_forward(Tensor offsets, Tensor input, Tensor? t_starts, Tensor? t_ends, "
      "int input_kind, bool check=True) -> (Tensor, Tensor, Tensor)");
  m.def(
      "render_weight_backward(Tensor offsets, Tensor? t_starts, Tensor? t_ends, Tensor trans, "
      "Tensor alphas, Tensor? grad_weights, Tensor? grad_trans, Tensor? grad_alphas, "
      "int input_kind, bool check=True) -> Tensor");
  m.def(
      "composite_forward(Tensor offsets, Tensor input, Tensor values, Tensor? t_starts, "
      "Tensor? t_ends, int input_kind, float early_stop_eps, bool check=True) -> (Tensor, Tensor, "
      "Tensor)");
  m.def(
      "composite_backward(Tensor offsets, Tensor input, Tensor values, Tensor? t_starts, "
      "Tensor? t_ends, int input_kind, float early_stop_eps, Tensor colors, Tensor opacity, "
      "Tensor depth, Tensor? grad_colors, Tensor? grad_opacity, Tensor? grad_depth, "
      "bool input_grad, bool values_grad, bool check=True) -> (Tensor, Tensor)");
}

template <typename Backend>
void impl_volume_render_ops(torch::Library& m) {
  m.impl("ray_offsets", &ray_offsets_impl<Backend>);
  m.impl("render_weight_forward", &weights_forward_impl<Backend>);
  m.impl("render_weight_backward", &weights_backward_impl<Backend>);
  m.impl("composite_forward", &composite_forward_impl<Backend>);
  m.impl("composite_backward", &composite_backward_impl<Backend>);
}

}  // namespace s3d_torch
