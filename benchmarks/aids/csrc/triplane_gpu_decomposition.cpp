// The CUDA launcher's tri-plane backward decomposition (per-point position
// gradients, then one atomic-style scatter per point and plane over all
// channels), run serially on the CPU: the CPU launcher takes other paths for
// some modes, so this lets CPU-only tests exercise the bodies the GPU runs.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "host_context.h"
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

// The binding's checks and allocations (triplane_args.h) around the decomposition.
struct GpuDecompositionBackend {
  using Guard = s3d_torch::HostContext::Guard;
  static constexpr bool kZeroFilledGrads = true;  // as for the CUDA launcher
  static void prepare_output(const at::Tensor&) {}
  template <typename T>
  static void backward(const tp::Params<T>& p, const T* points, const T* grad_out, T* grad_points,
                       T* const* grad_planes, bool, const at::TensorOptions&) {
    backward_gpu_decomposition<T>(p, points, grad_out, grad_points, grad_planes);
  }
};

}  // namespace

TORCH_LIBRARY_FRAGMENT(s3d_fast_aids, m) {
  m.def(
      "triplane_backward_gpu_decomposition(Tensor grad_out, Tensor[] planes, Tensor points, "
      "int plane_reduce, int scale_reduce, bool align_corners, int padding, int axes, "
      "bool points_grad, bool planes_grad) -> (Tensor, Tensor[])");
}

TORCH_LIBRARY_IMPL(s3d_fast_aids, CPU, m) {
  m.impl("triplane_backward_gpu_decomposition",
         &s3d_torch::triplane_backward_impl<GpuDecompositionBackend>);
}
