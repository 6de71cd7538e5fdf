// Multi-resolution hash-grid encoding (Instant-NGP): per-point kernel bodies
// shared by the CPU and CUDA launchers.
//
// Semantics are tiny-cuda-nn's GridEncoding (include/tiny-cuda-nn/encodings/
// grid.h and common_device.h), checked against its source:
//  * level l: scale = exp2f(l * log2f(per_level_scale)) * base_resolution - 1
//    (float arithmetic), resolution = (uint32)ceilf(scale) + 1. The host
//    computes these (s3d_fast/ops/_hashgrid_spec.py) and passes `scale`.
//  * pos = fmaf(scale, x, 0.5f); cell = (uint32)(int)floorf(pos);
//    frac = pos - floor (tcnn's pos_fract; newer tcnn writes the fmaf
//    explicitly, older relies on nvcc contracting x * scale + 0.5f).
//  * smoothstep: w = f^2 (3 - 2f), w' = 6 f (1 - f); linear: w = f, w' = 1.
//  * a level holds min(next_multiple(res^D, 8), 2^log2_hashmap_size) entries
//    (Hash type; Dense type keeps the dense count). Its index is dense,
//    x + y*res + z*res^2 in uint32 arithmetic, while res^D <= entries, else the
//    coherent-prime hash x*1 ^ y*2654435761 ^ z*805459861 (uint32); in both
//    cases taken modulo the level's entry count. The upper corner of the last
//    cell may be `res` itself: the dense index then wraps (tcnn does the same).
//  * parameters: level-major, then entry, then feature (grid[(offset_l +
//    index) * F + f]); output feature l*F + f.
//  * inputs outside [0, 1] are not clamped: the cell coordinate is converted
//    through int to uint32, so negative cells wrap around 2^32 and the index
//    (dense or hashed) wraps modulo the level size, as in tcnn. Past the int
//    range (and for +-inf) the cell saturates at its ends with weight 0; a NaN
//    coordinate gives NaN features and no table gradient (locate).
// tcnn's stochastic interpolation, quantisation threshold and max_level are
// not reproduced (their defaults are off).
#pragma once

#include "s3d/common.h"

namespace s3d {
namespace hashgrid {

constexpr int kMaxLevels = 32;  // tcnn's offset table holds 32 levels

enum class Interpolation : int { Linear = 0, Smoothstep = 1 };

struct Layout {
  int n_levels;
  uint32_t offset[kMaxLevels + 1];  // first entry of each level; offset[n_levels] = all entries
  float scale[kMaxLevels];
  uint32_t resolution[kMaxLevels];
  uint8_t hashed[kMaxLevels];  // res^D > entries of the level
  Interpolation interpolation;
};

template <typename T>
struct Params {
  Layout layout;
  const T* table;    // (entries, F) contiguous
  int64_t n_points;  // points: (N, D) contiguous; output (N, L*F)
};

namespace detail {
S3D_FN float fma_(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return fmaf(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}
S3D_FN double fma_(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return ::fma(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}
}  // namespace detail

// Where a point falls in one level: the lower corner, the interpolation
// weight of the upper corner along each axis, and d(weight)/dx.
template <int D, typename T>
struct Cell {
  uint32_t lower[D];
  T w[D];
  T dw[D];
};

// The floor of a position must lie in the int range to be converted.
template <typename T>
S3D_FN T kMinCell() {
  return T(-2147483648.0);
}
template <typename T>
S3D_FN T kMaxCell() {
  return sizeof(T) == 4 ? T(2147483520.0) : T(2147483647.0);  // the largest float < 2^31
}

template <int D, typename T>
S3D_FN void locate(const T* x, T scale, Interpolation interp, Cell<D, T>* c) {
#pragma unroll
  for (int d = 0; d < D; ++d) {
    const T pos = detail::fma_(scale, x[d], T(0.5));
    T fl = floor_(pos);
    T f = pos - fl;
    const bool beyond = !(fl >= kMinCell<T>() && fl <= kMaxCell<T>());
    const bool nan = x[d] != x[d];
    if (beyond) {
      // NaN, infinite, or beyond the int range (where the cast is undefined):
      // a NaN coordinate keeps a NaN weight (its features are NaN) at cell 0;
      // any other saturates to the int range's end with weight 0 and no slope
      // (a float that large has no fraction left anyway).
      fl = nan || pos != pos ? T(0) : (fl < T(0) ? kMinCell<T>() : kMaxCell<T>());
      f = nan ? x[d] : T(0);
    }
    c->lower[d] = static_cast<uint32_t>(static_cast<int>(fl));
    if (interp == Interpolation::Smoothstep) {
      c->w[d] = f * f * (T(3) - T(2) * f);
      c->dw[d] = scale * T(6) * f * (T(1) - f);
    } else {
      c->w[d] = f;
      c->dw[d] = scale;
    }
    if (beyond) c->dw[d] = nan ? x[d] : T(0);
  }
}

// Entry (within its level) of grid vertex `v`.
template <int D>
S3D_FN uint32_t vertex_index(const uint32_t* v, bool hashed, uint32_t res, uint32_t size) {
  uint32_t index;
  if (hashed) {
    index = v[0];
    if (D > 1) index ^= v[1] * 2654435761u;
    if (D > 2) index ^= v[2] * 805459861u;
  } else {
    index = v[0];
    uint32_t stride = res;
#pragma unroll
    for (int d = 1; d < D; ++d) {
      index += v[d] * stride;
      stride *= res;
    }
  }
  // Hashed levels are 2^k entries: a mask instead of a division.
  return (size & (size - 1)) == 0 ? (index & (size - 1)) : (index % size);
}

// Corner `corner` (bit d set: upper along axis d) of the cell: its entry and
// its n-linear weight.
template <int D, typename T>
S3D_FN uint32_t corner(const Cell<D, T>& c, int corner, bool hashed, uint32_t res, uint32_t size,
                       T* weight) {
  uint32_t v[D];
  T w = T(1);
#pragma unroll
  for (int d = 0; d < D; ++d) {
    const bool upper = (corner >> d) & 1;
    v[d] = c.lower[d] + (upper ? 1u : 0u);
    w *= upper ? c.w[d] : T(1) - c.w[d];
  }
  *weight = w;
  return vertex_index<D>(v, hashed, res, size);
}

// One level's constants, read once per level by the launchers' loops.
template <typename T>
struct Level {
  T scale;
  uint32_t size;  // entries of the level
  uint32_t resolution;
  bool hashed;
  int64_t first_entry;  // offset of the level in the table
  Interpolation interpolation;
};

template <typename T>
S3D_FN Level<T> level_of(const Layout& L, int level) {
  Level<T> lv;
  lv.scale = static_cast<T>(L.scale[level]);
  lv.size = L.offset[level + 1] - L.offset[level];
  lv.resolution = L.resolution[level];
  lv.hashed = L.hashed[level] != 0;
  lv.first_entry = L.offset[level];
  lv.interpolation = L.interpolation;
  return lv;
}

// The 2^D corners of point x at one level: level-local entries and weights.
// Both launchers compute these first and gather or scatter after (the CPU
// one for a whole chunk of points, to have its loads in flight together).
template <int D, typename T>
S3D_FN void level_corners(const Level<T>& lv, const T* x, uint32_t* entry, T* weight) {
  Cell<D, T> c;
  locate<D, T>(x, lv.scale, lv.interpolation, &c);
#pragma unroll
  for (int k = 0; k < (1 << D); ++k)
    entry[k] = corner<D, T>(c, k, lv.hashed, lv.resolution, lv.size, &weight[k]);
}

// out[f] = sum over corners of weight x entry features; `table` is the level's slice.
template <int D, int F, typename T>
S3D_FN void gather_corners(const T* table, const uint32_t* entry, const T* weight, T* out) {
  T acc[F];
#pragma unroll
  for (int f = 0; f < F; ++f) acc[f] = T(0);
#pragma unroll
  for (int k = 0; k < (1 << D); ++k) {
    const T* v = table + static_cast<int64_t>(entry[k]) * F;
#pragma unroll
    for (int f = 0; f < F; ++f) acc[f] += weight[k] * v[f];
  }
#pragma unroll
  for (int f = 0; f < F; ++f) out[f] = acc[f];
}

// Adds weight x g to the corners' entries of the level's gradient slice
// `table`; only entries e with lo <= e < hi are written, so CPU threads can
// split a level's table between them. `Add` is AtomicAdd on the GPU.
template <int D, int F, typename T, typename Add>
S3D_FN void scatter_corners(T* table, const uint32_t* entry, const T* weight, const T* g,
                            uint32_t lo, uint32_t hi) {
#pragma unroll
  for (int k = 0; k < (1 << D); ++k) {
    // A NaN point's weights are NaN: its gradient reaches no entry.
    if (entry[k] < lo || entry[k] >= hi || weight[k] != weight[k]) continue;
    T* dst = table + static_cast<int64_t>(entry[k]) * F;
#pragma unroll
    for (int f = 0; f < F; ++f) Add::add(dst + f, weight[k] * g[f]);
  }
}

// Encodes point x at one level: writes F features to out.
template <int D, int F, typename T>
S3D_FN void forward_level(const Params<T>& p, int level, const T* x, T* out) {
  const Level<T> lv = level_of<T>(p.layout, level);
  uint32_t entry[1 << D];
  T weight[1 << D];
  level_corners<D, T>(lv, x, entry, weight);
  gather_corners<D, F, T>(p.table + lv.first_entry * F, entry, weight, out);
}

// Scatters dL/d(features of one level) to the table: grad_table is the whole
// (entries, F) gradient; entries outside [lo, hi) of the level are skipped.
template <int D, int F, typename T, typename Add>
S3D_FN void backward_table_level(const Params<T>& p, int level, const T* x, const T* g,
                                 T* grad_table, uint32_t lo, uint32_t hi) {
  const Level<T> lv = level_of<T>(p.layout, level);
  uint32_t entry[1 << D];
  T weight[1 << D];
  level_corners<D, T>(lv, x, entry, weight);
  scatter_corners<D, F, T, Add>(grad_table + lv.first_entry * F, entry, weight, g, lo, hi);
}

// Adds one level's share of dL/dx for one point to grad_x (D values); g is
// the level's F output gradients. Summed over levels in level order by both
// launchers, so CPU and CUDA agree and the CPU result is deterministic.
template <int D, int F, typename T>
S3D_FN void backward_input_level(const Params<T>& p, int level, const T* x, const T* g, T* grad_x) {
  const Level<T> lv = level_of<T>(p.layout, level);
  Cell<D, T> c;
  locate<D, T>(x, lv.scale, lv.interpolation, &c);
  const T* table = p.table + lv.first_entry * F;
  T dlevel[D];
#pragma unroll
  for (int d = 0; d < D; ++d) dlevel[d] = T(0);
#pragma unroll
  for (int k = 0; k < (1 << D); ++k) {
    T w_unused;
    const uint32_t e = corner<D, T>(c, k, lv.hashed, lv.resolution, lv.size, &w_unused);
    const T* v = table + static_cast<int64_t>(e) * F;
    T s = T(0);  // dL/d(this corner's weight)
#pragma unroll
    for (int f = 0; f < F; ++f) s += g[f] * v[f];
    // d(weight)/d(w_d) = +-(product of the other axes' weights).
#pragma unroll
    for (int d = 0; d < D; ++d) {
      T other = T(1);
#pragma unroll
      for (int e2 = 0; e2 < D; ++e2) {
        if (e2 == d) continue;
        other *= ((k >> e2) & 1) ? c.w[e2] : T(1) - c.w[e2];
      }
      dlevel[d] += (((k >> d) & 1) ? other : -other) * s;
    }
  }
#pragma unroll
  for (int d = 0; d < D; ++d) grad_x[d] += dlevel[d] * c.dw[d];
}

// dL/dx of one point over all levels; g is its (L*F) output gradient.
template <int D, int F, typename T>
S3D_FN void backward_input_point(const Params<T>& p, const T* x, const T* g, T* grad_x) {
  T acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] = T(0);
  for (int level = 0; level < p.layout.n_levels; ++level)
    backward_input_level<D, F, T>(p, level, x, g + level * F, acc);
#pragma unroll
  for (int d = 0; d < D; ++d) grad_x[d] = acc[d];
}

}  // namespace hashgrid
}  // namespace s3d
