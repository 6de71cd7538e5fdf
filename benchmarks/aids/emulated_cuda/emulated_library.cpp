// The emulated CUDA launchers' op namespace, s3d_fast_emulated_cuda: the real
// ops' schemas, and the real CUDA bindings (csrc/torch/cuda/*_cuda_backend.h)
// registered for CPU tensors, with host memory and no stream in place of
// c10::cuda's device and stream. Plus the emulation's controls.
#include <torch/library.h>

#include <tuple>

#include "emulated_cuda_state.h"
#include "torch/cuda/hashgrid_cuda_backend.h"
#include "torch/cuda/mlp_cuda_backend.h"
#include "torch/cuda/occupancy_grid_cuda_backend.h"
#include "torch/cuda/triplane_cuda_backend.h"
#include "torch/cuda/volume_render_cuda_backend.h"
#include "torch/host_context.h"

namespace {

void set_launch_seed(int64_t seed) {
  s3d_emulated_cuda::counters().seed = static_cast<uint64_t>(seed);
}

// (kernels launched, float atomicAdds, integer atomics) since the library loaded.
std::tuple<int64_t, int64_t, int64_t> counts() {
  const auto& c = s3d_emulated_cuda::counters();
  return {static_cast<int64_t>(c.launches.load()), static_cast<int64_t>(c.float_atomic_adds.load()),
          static_cast<int64_t>(c.integer_atomics.load())};
}

}  // namespace

TORCH_LIBRARY(s3d_fast_emulated_cuda, m) {
  m.def("set_launch_seed(int seed) -> ()", &set_launch_seed);
  m.def("counts() -> (int, int, int)", &counts);
  s3d_torch::define_hashgrid_ops(m);
  s3d_torch::define_mlp_ops(m);
  s3d_torch::define_occupancy_grid_ops(m);
  s3d_torch::define_triplane_ops(m);
  s3d_torch::define_volume_render_ops(m);
}

TORCH_LIBRARY_IMPL(s3d_fast_emulated_cuda, CPU, m) {
  using s3d_torch::HostContext;
  s3d_torch::impl_hashgrid_ops<s3d_torch::HashgridCudaBackend<HostContext>>(m);
  s3d_torch::impl_mlp_ops<s3d_torch::MlpCudaBackend<HostContext>>(m);
  s3d_torch::impl_occupancy_grid_ops<s3d_torch::OccupancyGridCudaBackend<HostContext>>(m);
  s3d_torch::impl_triplane_ops<s3d_torch::TriplaneCudaBackend<HostContext>>(m);
  s3d_torch::impl_volume_render_ops<s3d_torch::VolumeRenderCudaBackend<HostContext>>(m);
}
