// The launch context of a backend whose tensors live in host memory: the CPU
// launchers, and the emulated CUDA launchers of the test build
// (benchmarks/aids/emulated_cuda), which run the CUDA bindings' code on CPU
// tensors. A CUDA backend takes the same two things from c10::cuda
// (cuda/cuda_context.h): a guard that makes the tensors' device current, and
// the stream to launch on.
#pragma once

#include <ATen/ATen.h>

namespace s3d_torch {

struct HostContext {
  struct Guard {
    explicit Guard(at::Device) {}
  };
  static void* stream() { return nullptr; }
};

}  // namespace s3d_torch
