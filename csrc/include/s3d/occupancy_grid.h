// Occupancy-grid ray marching: per-ray kernel bodies (CPU and CUDA).
//
// A batch of grids, each `levels` nested boxes (level l covers the ROI box
// scaled by 2^l about its centre, as in nerfacc) of res_x * res_y * res_z
// cells, stored as bitfields: bit c of grid g, level l is cell
// c = (x * res_y + y) * res_z + z, byte c / 8, bit c % 8.
//
// Samples of one ray lie on a fixed step lattice t_k = t0 + k * dt that starts
// at the ray's near bound, so the marcher yields exactly the subset of the
// dense uniform samples whose midpoint falls in an occupied cell (of the
// finest level containing it) before the far bound. Empty cells are skipped
// whole: the walk jumps to the first lattice step past the cell's exit, which
// makes the cost proportional to the cells crossed plus the samples kept.
// With cone_angle > 0 the step grows with t (dt = clamp(t * cone_angle,
// step, 1e10), as nerfacc) and the walk steps through empty cells instead.
//
// The same body serves both passes of the launcher: the counting pass (Emit
// only counts) and the filling pass (Emit writes at the ray's offset).
#pragma once

#include "s3d/common.h"

namespace s3d {
namespace occupancy {

constexpr int kMaxLevels = 16;

template <typename T>
struct MarchParams {
  const uint8_t* bits;       // (n_grids, levels, bytes_per_level)
  int64_t bytes_per_level;
  int res[3];
  int levels;
  T center[3];               // of the ROI box (level 0)
  T half[3];                 // half extent of the ROI box
  const T* rays_o;           // (R, 3)
  const T* rays_d;           // (R, 3)
  const int64_t* grid_index; // (R,) or null (all rays on grid 0)
  const T* t_near;           // (R,) start of each ray's lattice
  const T* t_far;            // (R,)
  T step;
  T cone_angle;
};

template <typename T>
S3D_FN T ceil_(T x) { return -floor_<T>(-x); }
template <typename T>
S3D_FN T min_(T a, T b) { return a < b ? a : b; }
template <typename T>
S3D_FN T max_(T a, T b) { return a > b ? a : b; }

// Slab test of the ray against a box; [t_enter, t_exit] (empty when enter > exit).
template <typename T>
S3D_FN void ray_box(const T* o, const T* d, const T* lo, const T* hi, T* t_enter, T* t_exit) {
  T t0 = T(-1e30), t1 = T(1e30);
  for (int a = 0; a < 3; ++a) {
    if (d[a] == T(0)) {
      if (o[a] < lo[a] || o[a] > hi[a]) {
        t0 = T(1);
        t1 = T(0);
      }
      continue;
    }
    const T inv = T(1) / d[a];
    T ta = (lo[a] - o[a]) * inv, tb = (hi[a] - o[a]) * inv;
    if (ta > tb) {
      const T tmp = ta;
      ta = tb;
      tb = tmp;
    }
    t0 = max_(t0, ta);
    t1 = min_(t1, tb);
  }
  *t_enter = t0;
  *t_exit = t1;
}

// Occupancy of the cell holding point x (finest level containing it); also
// returns, through t_exit, where the ray leaves that cell. Points outside the
// coarsest box count as empty with t_exit = t (the caller steps on).
template <typename T>
S3D_FN bool lookup(const MarchParams<T>& p, const uint8_t* grid_bits, const T* o, const T* d,
                   T t, T* t_exit) {
  T x[3];
  for (int a = 0; a < 3; ++a) x[a] = o[a] + t * d[a];
  T scale = T(1);
  for (int l = 0; l < p.levels; ++l, scale *= T(2)) {
    T lo[3], size[3];
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      lo[a] = p.center[a] - p.half[a] * scale;
      size[a] = T(2) * p.half[a] * scale / T(p.res[a]);
      const T u = x[a] - lo[a];
      if (u < T(0) || u > T(2) * p.half[a] * scale) inside = false;
    }
    if (!inside) continue;
    int c[3];
    T cell_lo[3], cell_hi[3];
    for (int a = 0; a < 3; ++a) {
      c[a] = clamp(static_cast<int>(floor_<T>((x[a] - lo[a]) / size[a])), 0, p.res[a] - 1);
      cell_lo[a] = lo[a] + T(c[a]) * size[a];
      cell_hi[a] = cell_lo[a] + size[a];
    }
    T enter;
    ray_box(o, d, cell_lo, cell_hi, &enter, t_exit);
    const int64_t idx = (static_cast<int64_t>(c[0]) * p.res[1] + c[1]) * p.res[2] + c[2];
    const uint8_t* bits = grid_bits + l * p.bytes_per_level;
    return (bits[idx >> 3] >> (idx & 7)) & 1;
  }
  *t_exit = t;
  return false;
}

// Marches ray r; calls emit(k, t_start, t_end) for every kept sample (k
// counts kept samples from 0) and returns how many there were.
template <typename T, typename Emit>
S3D_FN int64_t march_ray(const MarchParams<T>& p, int64_t r, Emit& emit) {
  const T* o = p.rays_o + 3 * r;
  const T* d = p.rays_d + 3 * r;
  const int64_t g = p.grid_index ? p.grid_index[r] : 0;
  const uint8_t* grid_bits = p.bits + g * p.levels * p.bytes_per_level;

  // Clip [near, far] to the coarsest box.
  const T outer = T(int64_t(1) << (p.levels - 1));
  T lo[3], hi[3];
  for (int a = 0; a < 3; ++a) {
    lo[a] = p.center[a] - p.half[a] * outer;
    hi[a] = p.center[a] + p.half[a] * outer;
  }
  T t_enter, t_exit;
  ray_box(o, d, lo, hi, &t_enter, &t_exit);
  const T t0 = p.t_near[r];
  const T t_hi = min_(p.t_far[r], t_exit);
  if (!(t_enter <= t_exit) || !(t0 < t_hi)) return 0;

  int64_t n = 0;
  if (p.cone_angle <= T(0)) {
    const T dt = p.step;
    // First lattice step whose midpoint is inside the box.
    int64_t k = 0;
    if (t_enter > t0) {
      const T first = ceil_((t_enter - t0) / dt - T(0.5));
      k = first > T(0) ? static_cast<int64_t>(first) : 0;
    }
    for (;;) {
      const T ts = t0 + T(k) * dt;
      const T te = t0 + T(k + 1) * dt;
      const T mid = T(0.5) * (ts + te);
      if (!(mid < t_hi)) break;
      T cell_exit;
      if (lookup(p, grid_bits, o, d, mid, &cell_exit)) {
        emit(n++, ts, te);
        ++k;
      } else {
        // Jump to the first step whose midpoint lies past this cell.
        const T next = ceil_((cell_exit - t0) / dt - T(0.5));
        const int64_t kn = next > T(k + 1) ? static_cast<int64_t>(next) : k + 1;
        k = kn;
      }
    }
  } else {
    T ts = t0;
    for (;;) {
      const T dt = clamp(ts * p.cone_angle, p.step, T(1e10));
      const T te = ts + dt;
      const T mid = T(0.5) * (ts + te);
      if (!(mid < t_hi)) break;
      T cell_exit;
      if (lookup(p, grid_bits, o, d, mid, &cell_exit)) emit(n++, ts, te);
      ts = te;
    }
  }
  return n;
}

struct CountEmit {
  template <typename T>
  S3D_FN void operator()(int64_t, T, T) {}
};

template <typename T>
struct WriteEmit {
  int64_t ray;
  int64_t offset;
  int64_t* ray_indices;
  T* t_starts;
  T* t_ends;
  S3D_FN void operator()(int64_t k, T ts, T te) {
    ray_indices[offset + k] = ray;
    t_starts[offset + k] = ts;
    t_ends[offset + k] = te;
  }
};

}  // namespace occupancy
}  // namespace s3d
