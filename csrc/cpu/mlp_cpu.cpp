// CPU launchers of the MLP kernels: OpenMP over tiles of kRowTile rows. A
// tile goes through every layer while its activations are in L1/L2, and the
// backward pass sums each thread's weight gradients in its own buffers.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "s3d/mlp_launchers.h"

namespace s3d {
namespace mlp {
namespace cpu {

// Rows that share each weight load in the layer products (4 rows x 4
// AVX-512 vectors of accumulators), and weight rows per weight-gradient tile.
constexpr int kRows = 4;
constexpr int kGradRows = 4;

template <typename T>
std::vector<T> lay_out(const Params<T>& p) {
  std::vector<T> layout(layout_size(p));
  for (int l = 0; l < p.n_layers; ++l) {
    const int mp = p.mp(l), kp = p.kp(l), m_n = p.out_width(l), k_n = p.in_width(l);
    T* w = layout.data() + w_offset(p, l);
    T* wt = w + static_cast<int64_t>(mp) * kp;
    for (int m = 0; m < mp; ++m)
      for (int k = 0; k < kp; ++k) {
        const T v = m < m_n && k < k_n ? p.weights[l][static_cast<int64_t>(m) * k_n + k] : T(0);
        w[m * kp + k] = v;
        wt[k * mp + m] = v;
      }
  }
  return layout;
}

// Tile rows [row0, row0 + kRowTile) of the input, padded; rows past n are zero.
template <typename T>
void fill_input(const Params<T>& p, const T* x, int64_t row0, int valid, T* xin) {
  const int kp = p.kp(0);
  for (int r = 0; r < valid; ++r) pad_input_row(p, x + (row0 + r) * p.in_cols, xin + r * kp);
  std::fill(xin + static_cast<int64_t>(valid) * kp, xin + static_cast<int64_t>(kRowTile) * kp,
            T(0));
}

template <typename T>
struct Tile {
  int64_t row0;
  int valid;
};

template <typename T>
Tile<T> tile_of(const Params<T>& p, int64_t b) {
  const int64_t row0 = b * kRowTile;
  return {row0, static_cast<int>(std::min<int64_t>(kRowTile, p.n_rows - row0))};
}

template <typename T>
void forward(const Params<T>& p, const T* x, T* const* hidden, T* out, int n_threads) {
  const int64_t n_tiles = padded_rows(p.n_rows) / kRowTile;
  if (n_tiles == 0) return;
  const std::vector<T> layout = lay_out(p);
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_tiles)));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> xin(static_cast<int64_t>(kRowTile) * p.kp(0));
    T* hid[kMaxLayers] = {};
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_tiles; ++b) {
      const Tile<T> t = tile_of(p, b);
      fill_input(p, x, t.row0, t.valid, xin.data());
      for (int l = 0; l + 1 < p.n_layers; ++l) hid[l] = hidden[l] + t.row0 * p.width;
      forward_rows<kRows, T>(p, layout.data(), kRowTile, t.valid, xin.data(), hid,
                             out + t.row0 * p.out_cols);
    }
  }
}

// One thread's share of the backward pass: tiles [begin, end), its weight
// gradients summed into acc (the layers' padded (Mp, Kp) blocks, back to back).
template <typename T>
void backward_tiles(const Params<T>& p, const T* layout, const T* x, T* const* hidden, const T* out,
                    const T* grad_out, T* grad_x, T* acc, int64_t begin, int64_t end) {
  const int last = p.n_layers - 1;
  std::vector<T> xin(static_cast<int64_t>(kRowTile) * p.kp(0));
  std::vector<T> dz_store;
  T* dz[kMaxLayers] = {};
  T* hid[kMaxLayers] = {};
  int64_t acc_off[kMaxLayers] = {};
  {
    int64_t size = 0, off = 0;
    for (int l = 0; l < p.n_layers; ++l) {
      size += static_cast<int64_t>(kRowTile) * p.mp(l);
      acc_off[l] = off;
      off += static_cast<int64_t>(p.mp(l)) * p.kp(l);
    }
    dz_store.resize(size);
    size = 0;
    for (int l = 0; l < p.n_layers; ++l) {
      dz[l] = dz_store.data() + size;
      size += static_cast<int64_t>(kRowTile) * p.mp(l);
    }
  }
  const int mp_last = p.mp(last);
  for (int64_t b = begin; b < end; ++b) {
    const Tile<T> t = tile_of(p, b);
    for (int r = 0; r < t.valid; ++r)
      output_dz_row(p, grad_out + (t.row0 + r) * p.out_cols, out + (t.row0 + r) * p.out_cols,
                    dz[last] + r * mp_last);
    std::fill(dz[last] + static_cast<int64_t>(t.valid) * mp_last,
              dz[last] + static_cast<int64_t>(kRowTile) * mp_last, T(0));
    for (int l = 0; l < last; ++l) hid[l] = hidden[l] + t.row0 * p.width;
    backward_rows<kRows, T>(p, layout, kRowTile, t.valid, hid, dz,
                            grad_x ? grad_x + t.row0 * p.in_cols : nullptr);
    if (acc == nullptr) continue;
    fill_input(p, x, t.row0, t.valid, xin.data());
    for (int l = 0; l < p.n_layers; ++l) {
      const T* in = l == 0 ? xin.data() : hid[l - 1];
      weight_grad_rows<kGradRows, T, ExclusiveAdd>(p, l, kRowTile, dz[l], p.mp(l), in,
                                                   acc + acc_off[l]);
    }
  }
}

template <typename T>
void backward(const Params<T>& p, const T* x, T* const* hidden, const T* out, const T* grad_out,
              T* grad_x, T* const* grad_weights, int n_threads) {
  const bool want_w = grad_weights != nullptr && grad_weights[0] != nullptr;
  const int64_t n_tiles = padded_rows(p.n_rows) / kRowTile;
  const std::vector<T> layout = lay_out(p);
  const int64_t acc_size = layout_size(p) / 2;  // the (Mp, Kp) blocks
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_tiles)));
  std::vector<std::vector<T>> acc(threads);
  int used = 1;
  if (n_tiles > 0) {
#pragma omp parallel num_threads(threads)
    {
      const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
      used = nt;
      if (want_w) acc[tid].assign(acc_size, T(0));
      backward_tiles(p, layout.data(), x, hidden, out, grad_out, grad_x,
                     want_w ? acc[tid].data() : nullptr, n_tiles * tid / nt,
                     n_tiles * (tid + 1) / nt);
    }
  }
  if (!want_w) return;
  int64_t off = 0;
  for (int l = 0; l < p.n_layers; ++l) {
    const int kp = p.kp(l), m_n = p.out_width(l), k_n = p.in_width(l);
    T* g = grad_weights[l];
    for (int m = 0; m < m_n; ++m)
      for (int k = 0; k < k_n; ++k) {
        T s = T(0);
        for (int t = 0; t < used && n_tiles > 0; ++t) s += acc[t][off + m * kp + k];
        g[static_cast<int64_t>(m) * k_n + k] = s;
      }
    off += static_cast<int64_t>(p.mp(l)) * kp;
  }
}

#define S3D_MLP_INSTANTIATE(T)                                                             \
  template void forward<T>(const Params<T>&, const T*, T* const*, T*, int);                \
  template void backward<T>(const Params<T>&, const T*, T* const*, const T*, const T*, T*, \
                            T* const*, int);
S3D_MLP_INSTANTIATE(float)
S3D_MLP_INSTANTIATE(double)
#undef S3D_MLP_INSTANTIATE

}  // namespace cpu
}  // namespace mlp
}  // namespace s3d
