// The emulated CUDA launchers' op namespace, s3d_fast_emulated_cuda: the same
// schemas as s3d_fast's ops (each *_emulated_op.cpp adds its own), registered
// for CPU tensors, plus the emulation's controls.
#include <torch/library.h>

#include <tuple>

#include "emulated_cuda_state.h"

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
}
