// Tensor-level glue of the MLP ops, shared by the CPU and CUDA registrations:
// argument checks, allocation, the schemas, and the calls into a backend's
// raw-pointer launchers. The Python op validates user input with friendly
// messages; these checks guard direct torch.ops callers.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "s3d/mlp_launchers.h"

namespace s3d_torch {

namespace mlpk = s3d::mlp;

// The layer chain of x (N, in_cols) through weights: layer 0 (width or out,
// in_cols + in_ones), hidden (width, width), last (out, width); width a
// multiple of 16 up to 256.
inline void check_mlp(const at::Tensor& x, const at::TensorList& weights, int64_t in_ones,
                      int64_t hidden_act, int64_t output_act) {
  const char* op = "mlp";
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), op, ": x must be a contiguous (N, in) tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  const int64_t n = static_cast<int64_t>(weights.size());
  TORCH_CHECK(n >= 1 && n <= mlpk::kMaxLayers, op, ": between 1 and ", mlpk::kMaxLayers,
              " weight matrices, got ", n);
  TORCH_CHECK(in_ones >= 0, op, ": in_ones must be >= 0");
  TORCH_CHECK(hidden_act >= 0 && hidden_act < mlpk::kNumActivations && output_act >= 0 &&
                  output_act < mlpk::kNumActivations,
              op, ": bad activation code");
  const int64_t width = weights[0].dim() == 2 ? weights[0].size(0) : -1;
  for (int64_t l = 0; l < n; ++l) {
    const at::Tensor& w = weights[l];
    TORCH_CHECK(w.dim() == 2 && w.is_contiguous(), op, ": weight ", l,
                " must be a contiguous 2-D tensor");
    TORCH_CHECK(w.scalar_type() == x.scalar_type() && w.device() == x.device(), op, ": weight ", l,
                " must have x's dtype and device");
    const int64_t in = l == 0 ? x.size(1) + in_ones : width;
    TORCH_CHECK(w.size(1) == in, op, ": weight ", l, " has ", w.size(1), " columns, expected ", in);
    TORCH_CHECK(l == n - 1 || w.size(0) == width, op, ": hidden weight ", l, " has ", w.size(0),
                " rows, expected ", width);
    TORCH_CHECK(w.size(0) >= 1, op, ": weight ", l, " has no rows");
  }
  TORCH_CHECK(n == 1 || (width % mlpk::kAlign == 0 && width <= 256), op,
              ": the hidden width must be a multiple of 16 up to 256, got ", width);
}

template <typename T>
mlpk::Params<T> mlp_params(const at::Tensor& x, const at::TensorList& weights, int64_t in_ones,
                           int64_t hidden_act, int64_t output_act) {
  mlpk::Params<T> p;
  p.n_rows = x.size(0);
  p.n_layers = static_cast<int>(weights.size());
  p.width = p.n_layers > 1 ? static_cast<int>(weights[0].size(0)) : 0;
  p.in_cols = static_cast<int>(x.size(1));
  p.in_ones = static_cast<int>(in_ones);
  p.out_cols = static_cast<int>(weights[p.n_layers - 1].size(0));
  p.hidden = static_cast<mlpk::Activation>(hidden_act);
  p.output = static_cast<mlpk::Activation>(output_act);
  for (int l = 0; l < p.n_layers; ++l) p.weights[l] = weights[l].data_ptr<T>();
  return p;
}

template <typename T>
std::vector<T*> hidden_ptrs(const at::Tensor& hidden, int n_layers) {
  std::vector<T*> h(mlpk::kMaxLayers, nullptr);
  for (int l = 0; l + 1 < n_layers; ++l) h[l] = hidden[l].data_ptr<T>();
  return h;
}

// -> (out (N, out), hidden (n_layers - 1, padded_rows(N), width)): the hidden
// layers' activations, which the backward pass reads.
template <typename Backend>
std::tuple<at::Tensor, at::Tensor> mlp_forward_impl(const at::Tensor& x, at::TensorList weights,
                                                    int64_t in_ones, int64_t hidden_act,
                                                    int64_t output_act) {
  const typename Backend::Guard guard(x.device());
  check_mlp(x, weights, in_ones, hidden_act, output_act);
  const int64_t n_layers = static_cast<int64_t>(weights.size());
  const int64_t width = n_layers > 1 ? weights[0].size(0) : 0;
  auto out = at::empty({x.size(0), weights[n_layers - 1].size(0)}, x.options());
  auto hidden = at::empty({n_layers - 1, mlpk::padded_rows(x.size(0)), width}, x.options());
  if (x.size(0) == 0) return {out, hidden};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mlp_forward", [&] {
    const auto p = mlp_params<scalar_t>(x, weights, in_ones, hidden_act, output_act);
    const auto h = hidden_ptrs<scalar_t>(hidden, p.n_layers);
    Backend::template forward<scalar_t>(p, x.data_ptr<scalar_t>(), h.data(),
                                        out.data_ptr<scalar_t>(), x.options());
  });
  return {out, hidden};
}

// -> (grad_x (N, in) or undefined, grad_weights like weights or empty).
template <typename Backend>
std::tuple<at::Tensor, std::vector<at::Tensor>> mlp_backward_impl(
    const at::Tensor& grad_out, const at::Tensor& x, at::TensorList weights,
    const at::Tensor& hidden, const at::Tensor& out, int64_t in_ones, int64_t hidden_act,
    int64_t output_act, bool x_grad, bool weights_grad) {
  const typename Backend::Guard guard(x.device());
  const char* op = "mlp";
  check_mlp(x, weights, in_ones, hidden_act, output_act);
  const int64_t n_layers = static_cast<int64_t>(weights.size());
  const int64_t width = n_layers > 1 ? weights[0].size(0) : 0;
  const std::vector<int64_t> out_shape{x.size(0), weights[n_layers - 1].size(0)};
  const std::vector<int64_t> hidden_shape{n_layers - 1, mlpk::padded_rows(x.size(0)), width};
  for (const auto& [name, t, shape] : {std::make_tuple("grad_out", &grad_out, &out_shape),
                                       std::make_tuple("out", &out, &out_shape),
                                       std::make_tuple("hidden", &hidden, &hidden_shape)}) {
    TORCH_CHECK(t->sizes() == at::IntArrayRef(*shape), op, ": ", name, " has shape ", t->sizes(),
                ", expected ", at::IntArrayRef(*shape));
    TORCH_CHECK(
        t->scalar_type() == x.scalar_type() && t->device() == x.device() && t->is_contiguous(), op,
        ": ", name, " must be contiguous, with x's dtype and device");
  }
  at::Tensor grad_x = x_grad ? at::empty_like(x) : at::Tensor();
  std::vector<at::Tensor> grad_w;
  if (weights_grad)
    for (const auto& w : weights)
      grad_w.push_back(Backend::kZeroFilledGrads ? at::zeros_like(w) : at::empty_like(w));
  if (x.size(0) == 0) {
    for (auto& g : grad_w) g.zero_();
    return {grad_x, grad_w};
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mlp_backward", [&] {
    const auto p = mlp_params<scalar_t>(x, weights, in_ones, hidden_act, output_act);
    const auto h = hidden_ptrs<scalar_t>(hidden, p.n_layers);
    std::vector<scalar_t*> gw(mlpk::kMaxLayers, nullptr);
    for (size_t l = 0; l < grad_w.size(); ++l) gw[l] = grad_w[l].data_ptr<scalar_t>();
    Backend::template backward<scalar_t>(p, x.data_ptr<scalar_t>(), h.data(),
                                         out.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
                                         x_grad ? grad_x.data_ptr<scalar_t>() : nullptr,
                                         weights_grad ? gw.data() : nullptr, x.options());
  });
  return {grad_x, grad_w};
}

inline void define_mlp_ops(torch::Library& m) {
  m.def(
      "mlp_forward(Tensor x, Tensor[] weights, int in_ones, int hidden_activation, "
      "int output_activation) -> (Tensor, Tensor)");
  m.def(
      "mlp_backward(Tensor grad_out, Tensor x, Tensor[] weights, Tensor hidden, Tensor out, "
      "int in_ones, int hidden_activation, int output_activation, bool x_grad, "
      "bool weights_grad) -> (Tensor, Tensor[])");
}

template <typename Backend>
void impl_mlp_ops(torch::Library& m) {
  m.impl("mlp_forward", &mlp_forward_impl<Backend>);
  m.impl("mlp_backward", &mlp_backward_impl<Backend>);
}

}  // namespace s3d_torch
