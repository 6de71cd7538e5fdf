// The CUDA launcher's tri-plane backward decomposition (per-point position
// gradients, then one atomic-style scatter per point and plane over all
// channels), run serially on the CPU: the CPU launcher takes other paths for
// some modes, so this lets CPU-only tests exercise the bodies the GPU runs.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "s3d/triplane.h"
#include "triplane_args.h"

namespace {

namespace tp = s3d::triplane;

// grad_planes must be zero-filled, as for the CUDA launcher.
template <typename T>
void backward_gpu_decomposition(const tp::Params<T>& p, const T* points, const T* grad_out,
                                T* grad_points, T* const* grad_planes) {
  const int64_t total = p.batch * p.n_points;
  if (grad_points != nullptr)
    for (int64_t i = 0; i < total; ++i)
      tp::backward_point_coords(p, points, grad_out, grad_points, i);
  for (int s = 0; s < p.n_scales; ++s) {
    if (grad_planes[s] == nullptr) continue;
    for (int64_t i = 0; i < total; ++i)
      for (int k = 0; k < 3; ++k)
        tp::backward_plane_point<T, s3d::AtomicAdd>(p, points, grad_out, grad_planes[s], s, k, i, 0,
                                                    p.channels);
  }
}

std::tuple<at::Tensor, std::vector<at::Tensor>> triplane_backward_gpu_decomposition_cpu(
    const at::Tensor& grad_out, at::TensorList planes, const at::Tensor& points,
    int64_t plane_reduce, int64_t scale_reduce, bool align_corners, int64_t padding, int64_t axes,
    bool points_grad, bool planes_grad) {
  using namespace s3d_torch;
  check_triplane_inputs(planes, points);
  auto grads = allocate_triplane_grads(planes, points, points_grad, planes_grad);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "triplane_backward_gpu_decomposition", [&] {
    auto p = make_params<scalar_t>(planes, points, plane_reduce, scale_reduce, align_corners,
                                   padding, axes);
    check_triplane_grad_out(grad_out, points, p.out_channels);
    std::vector<scalar_t*> plane_ptrs;
    for (auto& g : grads.planes)
      plane_ptrs.push_back(g.defined() ? g.data_ptr<scalar_t>() : nullptr);
    backward_gpu_decomposition<scalar_t>(
        p, points.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
        points_grad ? grads.points.data_ptr<scalar_t>() : nullptr, plane_ptrs.data());
  });
  return {grads.points, grads.planes};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(s3d_fast_aids, m) {
  m.def(
      "triplane_backward_gpu_decomposition(Tensor grad_out, Tensor[] planes, Tensor points, "
      "int plane_reduce, int scale_reduce, bool align_corners, int padding, int axes, "
      "bool points_grad, bool planes_grad) -> (Tensor, Tensor[])");
}

TORCH_LIBRARY_IMPL(s3d_fast_aids, CPU, m) {
  m.impl("triplane_backward_gpu_decomposition", &triplane_backward_gpu_decomposition_cpu);
}
