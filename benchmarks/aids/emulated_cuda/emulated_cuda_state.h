// State of the CUDA emulation shared by the emulated launchers and the torch
// glue that drives them: the seed of the launch order and what was counted.
// Plain C++: the glue includes it without the emulated CUDA runtime.
#pragma once

#include <atomic>
#include <cstdint>

namespace s3d_emulated_cuda {

struct Counters {
  std::atomic<uint64_t> seed{0};               // orders of blocks and threads derive from it
  std::atomic<uint64_t> launches{0};           // kernels launched
  std::atomic<uint64_t> float_atomic_adds{0};  // atomicAdd on float or double
  std::atomic<uint64_t> integer_atomics{0};    // atomicAdd / atomicOr on integers
};

// One instance per library (an inline function's static has vague linkage).
inline Counters& counters() {
  static Counters state;
  return state;
}

}  // namespace s3d_emulated_cuda
