// csrc/cuda/mlp_cuda.cu compiled as host C++ over the emulated CUDA runtime.
#include "cuda_runtime.h"  // first: its macros must precede the kernels
//
#include "cuda/mlp_cuda.cu"
