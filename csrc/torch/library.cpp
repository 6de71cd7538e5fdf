// The s3d_fast operator namespace. Each op file adds its schemas with
// TORCH_LIBRARY_FRAGMENT and its kernels with TORCH_LIBRARY_IMPL.
#include <torch/library.h>

#include <string>
#include <vector>

namespace {

std::vector<std::string> backends() {
#ifdef S3D_WITH_CUDA
  return {"cpu", "cuda"};
#else
  return {"cpu"};
#endif
}

}  // namespace

TORCH_LIBRARY(s3d_fast, m) { m.def("backends() -> str[]", &backends); }
