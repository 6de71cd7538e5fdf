// CUDA launchers of the MLP kernels: one thread per row runs the layer chain
// of s3d/mlp.h (weights read through the cache, no shared memory), the weight
// gradients are summed per (weight row, 16 columns) over chunks of rows and
// added with float atomics.
#include <cuda_runtime.h>

#include "s3d/cuda_check.h"
#include "s3d/mlp_launchers.h"

namespace s3d {
namespace mlp {
namespace cuda {

constexpr int kThreads = 128;
constexpr int64_t kGradChunk = 256;  // rows summed per weight-gradient thread
constexpr unsigned kMaxGridY = 65535;

template <typename T>
struct Ptrs {
  T* p[kMaxLayers];
};

template <typename T>
struct Workspace {
  T* layout;
  T* xin;             // (N, Kp0)
  T* dz[kMaxLayers];  // (N, Mp_l), backward only
};

template <typename T>
int64_t align8(int64_t elements) {
  return (elements * static_cast<int64_t>(sizeof(T)) + 7) / 8 * 8;
}

template <typename T>
Workspace<T> carve(const Params<T>& p, void* workspace, bool backward) {
  Workspace<T> w{};
  char* at = static_cast<char*>(workspace);
  w.layout = reinterpret_cast<T*>(at);
  at += align8<T>(layout_size(p));
  w.xin = reinterpret_cast<T*>(at);
  at += align8<T>(p.n_rows * p.kp(0));
  for (int l = 0; backward && l < p.n_layers; ++l) {
    w.dz[l] = reinterpret_cast<T*>(at);
    at += align8<T>(p.n_rows * p.mp(l));
  }
  return w;
}

template <typename T>
int64_t forward_workspace_bytes(const Params<T>& p) {
  return align8<T>(layout_size(p)) + align8<T>(p.n_rows * p.kp(0));
}

template <typename T>
int64_t backward_workspace_bytes(const Params<T>& p) {
  int64_t bytes = forward_workspace_bytes(p);
  for (int l = 0; l < p.n_layers; ++l) bytes += align8<T>(p.n_rows * p.mp(l));
  return bytes;
}

template <typename T>
__global__ void layout_kernel(Params<T> p, T* layout) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < layout_size(p)) layout[e] = layout_element(p, e);
}

template <typename T>
__global__ void pad_kernel(Params<T> p, const T* x, T* xin) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < p.n_rows) pad_input_row(p, x + r * p.in_cols, xin + r * p.kp(0));
}

template <typename T>
__global__ void forward_kernel(Params<T> p, const T* layout, const T* xin, Ptrs<T> hidden, T* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= p.n_rows) return;
  T* hid[kMaxLayers] = {};
  for (int l = 0; l + 1 < p.n_layers; ++l) hid[l] = hidden.p[l] + r * p.width;
  forward_rows<1, T>(p, layout, 1, 1, xin + r * p.kp(0), hid, out + r * p.out_cols);
}

template <typename T>
__global__ void backward_kernel(Params<T> p, const T* layout, Ptrs<T> hidden, const T* out,
                                const T* grad_out, Ptrs<T> dz, T* grad_x) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= p.n_rows) return;
  const int last = p.n_layers - 1;
  T* hid[kMaxLayers] = {};
  T* dz_row[kMaxLayers] = {};
  for (int l = 0; l < p.n_layers; ++l) {
    if (l < last) hid[l] = hidden.p[l] + r * p.width;
    dz_row[l] = dz.p[l] + r * p.mp(l);
  }
  output_dz_row(p, grad_out + r * p.out_cols, out + r * p.out_cols, dz_row[last]);
  backward_rows<1, T>(p, layout, 1, 1, hid, dz_row, grad_x ? grad_x + r * p.in_cols : nullptr);
}

// Thread (m, 16 columns from k0) of layer l, rows [row0, row0 + n): the sums
// of dz[r][m] * in[r][k] added to grad_w (out_l, in_l).
template <typename T>
__global__ void weight_grad_kernel(Params<T> p, int l, const T* dz, const T* in, T* grad_w,
                                   int64_t chunk) {
  const int kp = p.kp(l), mp = p.mp(l), chunks = kp / kAlign;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(p.out_width(l)) * chunks) return;
  const int m = static_cast<int>(t / chunks), k0 = static_cast<int>(t % chunks) * kAlign;
  const int64_t row0 = blockIdx.y * chunk;
  if (row0 >= p.n_rows) return;
  const int n = static_cast<int>(p.n_rows - row0 < chunk ? p.n_rows - row0 : chunk);
  typename Vec<T>::type acc[1][kAlign];
  for (int c = 0; c < kAlign; ++c) acc[0][c] = T(0);
  mac<1, kAlign, T>(n, dz + row0 * mp + m, 1, mp, in + row0 * kp + k0, kp, acc);
  const int k_n = p.in_width(l);
  for (int c = 0; c < kAlign && k0 + c < k_n; ++c)
    AtomicAdd::add(grad_w + static_cast<int64_t>(m) * k_n + k0 + c, acc[0][c]);
}

static unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
void lay_out_and_pad(const Params<T>& p, const T* x, const Workspace<T>& w, cudaStream_t s) {
  S3D_LAUNCH(blocks_for(layout_size(p)), kThreads, s, layout_kernel<T>)(p, w.layout);
  S3D_CUDA_CHECK(cudaGetLastError());
  S3D_LAUNCH(blocks_for(p.n_rows), kThreads, s, pad_kernel<T>)(p, x, w.xin);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void forward(const Params<T>& p, const T* x, T* const* hidden, T* out, void* workspace,
             void* stream) {
  if (p.n_rows == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  const Workspace<T> w = carve(p, workspace, false);
  lay_out_and_pad(p, x, w, s);
  Ptrs<T> h{};
  for (int l = 0; l + 1 < p.n_layers; ++l) h.p[l] = hidden[l];
  S3D_LAUNCH(blocks_for(p.n_rows), kThreads, s, forward_kernel<T>)(p, w.layout, w.xin, h, out);
  S3D_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward(const Params<T>& p, const T* x, T* const* hidden, const T* out, const T* grad_out,
              T* grad_x, T* const* grad_weights, void* workspace, void* stream) {
  if (p.n_rows == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  const Workspace<T> w = carve(p, workspace, true);
  lay_out_and_pad(p, x, w, s);
  Ptrs<T> h{}, dz{};
  for (int l = 0; l < p.n_layers; ++l) {
    if (l + 1 < p.n_layers) h.p[l] = hidden[l];
    dz.p[l] = w.dz[l];
  }
  S3D_LAUNCH(blocks_for(p.n_rows), kThreads, s, backward_kernel<T>)(p, w.layout, h, out, grad_out,
                                                                    dz, grad_x);
  S3D_CUDA_CHECK(cudaGetLastError());
  if (grad_weights == nullptr || grad_weights[0] == nullptr) return;
  int64_t chunk = kGradChunk;
  while ((p.n_rows + chunk - 1) / chunk > kMaxGridY) chunk *= 2;
  const unsigned row_chunks = static_cast<unsigned>((p.n_rows + chunk - 1) / chunk);
  for (int l = 0; l < p.n_layers; ++l) {
    const T* in = l == 0 ? w.xin : hidden[l - 1];
    const int64_t threads = static_cast<int64_t>(p.out_width(l)) * (p.kp(l) / kAlign);
    S3D_LAUNCH(dim3(blocks_for(threads), row_chunks), kThreads, s, weight_grad_kernel<T>)(
        p, l, w.dz[l], in, grad_weights[l], chunk);
    S3D_CUDA_CHECK(cudaGetLastError());
  }
}

#define S3D_MLP_INSTANTIATE(T)                                                             \
  template int64_t forward_workspace_bytes<T>(const Params<T>&);                           \
  template int64_t backward_workspace_bytes<T>(const Params<T>&);                          \
  template void forward<T>(const Params<T>&, const T*, T* const*, T*, void*, void*);       \
  template void backward<T>(const Params<T>&, const T*, T* const*, const T*, const T*, T*, \
                            T* const*, void*, void*);
S3D_MLP_INSTANTIATE(float)
S3D_MLP_INSTANTIATE(double)
#undef S3D_MLP_INSTANTIATE

}  // namespace cuda
}  // namespace mlp
}  // namespace s3d
