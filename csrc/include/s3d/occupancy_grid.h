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
// whole: the walk jumps to the first lattice step past the exit of the empty
// cell, or of the empty kBlock^3 block around it, so the cost follows the
// empty regions crossed plus the samples kept, not the steps.
// With cone_angle > 0 the step grows with t (dt = clamp(t * cone_angle,
// step, 1e10), as nerfacc): the lattice is that recurrence, t_{k+1} = t_k +
// dt(t_k), which has no closed form in floating point, so the walk replays
// it (a multiply, a clamp and an add per step) across an empty region
// without looking anything up, and looks up the grid again only past the
// region's exit. The samples are bit for bit those of the step-by-step walk
// (nerfacc also replays the recurrence across empty cells).
//
// The same body serves both passes of the launcher: the counting pass (Emit
// only counts) and the filling pass (Emit writes at the ray's offset).
#pragma once

#include "s3d/common.h"

namespace s3d {
namespace occupancy {

constexpr int kMaxLevels = 16;
// Cells per side of the coarse blocks that let the walk skip large empty
// regions in one jump (a ray crosses ~res * sqrt(3) cells, mostly empty).
constexpr int kBlock = 8;
// Steps of the finest lattice (`step`) across the coarsest box's diagonal that
// the bindings accept; more would walk for minutes per ray.
constexpr double kMaxStepsPerBox = 16777216.0;  // 2^24
// A ray whose lattice needs more steps than this from t_near to its end (a
// t_near far before the box, or not finite) yields no samples: its lattice
// indices would not fit an int64 or its t values would be rounding noise.
constexpr double kMaxLatticeSteps = 2147483648.0;  // 2^31

template <typename T>
struct MarchParams {
  const uint8_t* bits;  // (n_grids, levels, bytes_per_level)
  int64_t bytes_per_level;
  // Coarse summary: bit set where any cell of a kBlock^3 block is occupied;
  // (n_grids, levels, block_bytes_per_level), or null.
  const uint8_t* block_bits;
  int64_t block_bytes_per_level;
  int block_res[3];
  int res[3];
  int levels;
  T center[3];                // of the ROI box (level 0)
  T half[3];                  // half extent of the ROI box
  const T* rays_o;            // (R, 3)
  const T* rays_d;            // (R, 3)
  const int64_t* grid_index;  // (R,) or null (all rays on grid 0)
  const T* t_near;            // (R,) start of each ray's lattice
  const T* t_far;             // (R,)
  T step;
  T cone_angle;
};

template <typename T>
S3D_FN T ceil_(T x) {
  return -floor_<T>(-x);
}
template <typename T>
S3D_FN T min_(T a, T b) {
  return a < b ? a : b;
}
template <typename T>
S3D_FN T max_(T a, T b) {
  return a > b ? a : b;
}

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

// Per-ray constants of one level: where its box starts, its cell size and
// its inverse (hoisted out of the per-step lookup).
template <typename T>
struct LevelFrame {
  T lo[3], extent[3], size[3], inv_size[3];
};

template <typename T>
S3D_FN void make_frames(const MarchParams<T>& p, LevelFrame<T>* frames) {
  T scale = T(1);
  for (int l = 0; l < p.levels; ++l, scale *= T(2)) {
    for (int a = 0; a < 3; ++a) {
      frames[l].lo[a] = p.center[a] - p.half[a] * scale;
      frames[l].extent[a] = T(2) * p.half[a] * scale;
      frames[l].size[a] = frames[l].extent[a] / T(p.res[a]);
      frames[l].inv_size[a] = T(p.res[a]) / frames[l].extent[a];
    }
  }
}

// Where the ray leaves the axis-aligned box [lo, lo + size) (it is inside).
template <typename T>
S3D_FN T box_exit(const T* o, const T* inv_d, const T* lo, const T* size) {
  T t = T(1e30);
  for (int a = 0; a < 3; ++a) {
    if (inv_d[a] == T(0)) continue;  // parallel to this axis' faces
    const T face = inv_d[a] > T(0) ? lo[a] + size[a] : lo[a];
    t = min_(t, (face - o[a]) * inv_d[a]);
  }
  return t;
}

// An empty cell or block of level l > 0 may reach into the box of level
// l - 1 (when the finer box's faces do not fall on the coarse cell or block
// faces, e.g. res not a multiple of 32 with 8^3 blocks); there the finer level
// decides, so the empty region ends where the ray enters that box.
template <typename T>
S3D_FN T clip_to_finer(const LevelFrame<T>* frames, int l, const T* o, const T* inv_d, T t,
                       T t_exit) {
  if (l == 0) return t_exit;
  const LevelFrame<T>& f = frames[l - 1];
  T t0 = T(-1e30), t1 = T(1e30);
  for (int a = 0; a < 3; ++a) {
    if (inv_d[a] == T(0)) {
      if (o[a] < f.lo[a] || o[a] > f.lo[a] + f.extent[a]) return t_exit;  // never enters
      continue;
    }
    T ta = (f.lo[a] - o[a]) * inv_d[a], tb = (f.lo[a] + f.extent[a] - o[a]) * inv_d[a];
    t0 = max_(t0, min_(ta, tb));
    t1 = min_(t1, max_(ta, tb));
  }
  // The point at t is outside the finer box; only an entry ahead matters.
  return (t0 <= t1 && t0 > t) ? min_(t_exit, t0) : t_exit;
}

// Occupancy at point o + t d (finest level whose box holds it); through
// t_exit, where the ray leaves the empty region around it: its block of
// kBlock^3 cells when that block is empty, else its cell. Points outside the
// coarsest box count as empty with t_exit = t (the caller steps on).
template <typename T>
S3D_HOT_FN bool lookup(const MarchParams<T>& p, const LevelFrame<T>* frames, const uint8_t* grid_bits,
                   const uint8_t* grid_blocks, const T* o, const T* d, const T* inv_d, T t,
                   T* t_exit) {
  T x[3];
  for (int a = 0; a < 3; ++a) x[a] = o[a] + t * d[a];
  for (int l = 0; l < p.levels; ++l) {
    const LevelFrame<T>& f = frames[l];
    T u[3];
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      u[a] = x[a] - f.lo[a];
      inside = inside && u[a] >= T(0) && u[a] <= f.extent[a];
    }
    if (!inside) continue;
    int c[3];
    for (int a = 0; a < 3; ++a)
      c[a] = clamp(static_cast<int>(floor_<T>(u[a] * f.inv_size[a])), 0, p.res[a] - 1);
    // The empty region around the point: its block when that is empty,
    // else its cell (when that is empty).
    int first[3], span[3];
    bool block_empty = false;
    if (grid_blocks) {
      const int64_t b = (static_cast<int64_t>(c[0] / kBlock) * p.block_res[1] + c[1] / kBlock) *
                            p.block_res[2] +
                        c[2] / kBlock;
      block_empty = !((grid_blocks[l * p.block_bytes_per_level + (b >> 3)] >> (b & 7)) & 1);
    }
    if (block_empty) {
      for (int a = 0; a < 3; ++a) {
        first[a] = (c[a] / kBlock) * kBlock;
        span[a] = min_(first[a] + kBlock, p.res[a]) - first[a];
      }
    } else {
      const int64_t idx = (static_cast<int64_t>(c[0]) * p.res[1] + c[1]) * p.res[2] + c[2];
      if ((grid_bits[l * p.bytes_per_level + (idx >> 3)] >> (idx & 7)) & 1) return true;
      for (int a = 0; a < 3; ++a) {
        first[a] = c[a];
        span[a] = 1;
      }
    }
    T lo[3], size[3];
    for (int a = 0; a < 3; ++a) {
      lo[a] = f.lo[a] + T(first[a]) * f.size[a];
      size[a] = T(span[a]) * f.size[a];
    }
    const T exit = box_exit(o, inv_d, lo, size);
    *t_exit = l == 0 ? exit : clip_to_finer(frames, l, o, inv_d, t, exit);
    return false;
  }
  *t_exit = t;
  return false;
}

// How far before the exit of an empty region the walk resumes looking up
// the grid. The lookup rounds o + t d on its own, so a midpoint within a few
// ulps of a cell face may land on either side; such steps are looked up
// rather than skipped, so skipping never changes which samples are kept
// (save for rays grazing a face at a tiny angle). `scale` bounds |t| and the
// coordinates along the ray's stretch inside the box.
template <typename T>
S3D_FN T skip_margin(T scale) {
  return (sizeof(T) == 4 ? T(1e-5) : T(1e-13)) * scale;
}

// Marches ray r; calls emit(k, t_start, t_end) for every kept sample (k
// counts kept samples from 0) and returns how many there were.
template <typename T, typename Emit>
S3D_FN int64_t march_ray(const MarchParams<T>& p, int64_t r, Emit& emit) {
  const T* o = p.rays_o + 3 * r;
  const T* d = p.rays_d + 3 * r;
  const int64_t g = p.grid_index ? p.grid_index[r] : 0;
  const uint8_t* grid_bits = p.bits + g * p.levels * p.bytes_per_level;
  const uint8_t* grid_blocks = p.block_bits ? p.block_bits + g * p.levels * p.block_bytes_per_level
                                            : nullptr;
  LevelFrame<T> frames[kMaxLevels];
  make_frames(p, frames);
  T inv_d[3];
  for (int a = 0; a < 3; ++a) inv_d[a] = d[a] != T(0) ? T(1) / d[a] : T(0);

  // Clip [near, far] to the coarsest box.
  const LevelFrame<T>& outer = frames[p.levels - 1];
  T hi[3];
  for (int a = 0; a < 3; ++a) hi[a] = outer.lo[a] + outer.extent[a];
  T t_enter, t_exit;
  ray_box(o, d, outer.lo, hi, &t_enter, &t_exit);
  const T t0 = p.t_near[r];
  const T t_hi = min_(p.t_far[r], t_exit);
  if (!(t_enter <= t_exit) || !(t0 < t_hi)) return 0;
  if (!((t_hi - t0) / p.step < T(kMaxLatticeSteps))) return 0;  // also NaN and infinite bounds
  // t so large that a step vanishes in rounding: the walk would not advance.
  const T t_mag = max_(t0 < T(0) ? -t0 : t0, t_hi < T(0) ? -t_hi : t_hi);
  if (!(t_mag + p.step > t_mag)) return 0;
  // No step past this one has its midpoint before t_hi: a jump never goes further.
  const T k_end = ceil_((t_hi - t0) / p.step) + T(1);

  T scale = t_hi < T(0) ? -t_hi : t_hi;
  for (int a = 0; a < 3; ++a) {
    scale = max_(scale, outer.lo[a] < T(0) ? -outer.lo[a] : outer.lo[a]);
    scale = max_(scale, hi[a] < T(0) ? -hi[a] : hi[a]);
  }
  const T margin = skip_margin(T(2) * scale);

  int64_t n = 0;
  if (p.cone_angle <= T(0)) {
    const T dt = p.step;
    // First lattice step whose midpoint is inside the box.
    int64_t k = 0;
    if (t_enter > t0) {
      const T first = min_(ceil_((t_enter - margin - t0) / dt - T(0.5)), k_end);
      k = first > T(0) ? static_cast<int64_t>(first) : 0;
    }
    for (;;) {
      const T ts = t0 + T(k) * dt;
      const T te = t0 + T(k + 1) * dt;
      const T mid = T(0.5) * (ts + te);
      if (!(mid < t_hi)) break;
      T region_exit;
      if (lookup(p, frames, grid_bits, grid_blocks, o, d, inv_d, mid, &region_exit)) {
        emit(n++, ts, te);
        if (emit.done(n)) break;
        ++k;
      } else {
        // Jump to the first step whose midpoint lies past the empty region.
        const T next = min_(ceil_((region_exit - margin - t0) / dt - T(0.5)), k_end);
        k = next > T(k + 1) ? static_cast<int64_t>(next) : k + 1;
      }
    }
  } else {
    // Midpoints before skip_to are known to be empty: before the box, then
    // inside the last empty cell/block looked up.
    T skip_to = min_(t_enter - margin, t_hi);
    T ts = t0;
    for (;;) {
      // Replay the lattice across the known-empty stretch: the loop-carried
      // work is one multiply, clamp and add per step.
      T te = ts + clamp(ts * p.cone_angle, p.step, T(1e10));
      while (T(0.5) * (ts + te) < skip_to) {
        ts = te;
        te = ts + clamp(ts * p.cone_angle, p.step, T(1e10));
      }
      const T mid = T(0.5) * (ts + te);
      if (!(mid < t_hi)) break;
      T region_exit;
      if (lookup(p, frames, grid_bits, grid_blocks, o, d, inv_d, mid, &region_exit)) {
        emit(n++, ts, te);
        if (emit.done(n)) break;
      } else {
        skip_to = min_(region_exit - margin, t_hi);
      }
      ts = te;
    }
  }
  return n;
}

// The counting pass walks every ray to its end; the filling pass knows each
// ray's count and stops at its last sample (skipping the empty tail).
struct CountEmit {
  template <typename T>
  S3D_FN void operator()(int64_t, T, T) {}
  S3D_FN bool done(int64_t) const { return false; }
};

template <typename T>
struct WriteEmit {
  int64_t ray;
  int64_t offset;
  int64_t count;
  int64_t* ray_indices;
  T* t_starts;
  T* t_ends;
  S3D_FN void operator()(int64_t k, T ts, T te) {
    ray_indices[offset + k] = ray;
    t_starts[offset + k] = ts;
    t_ends[offset + k] = te;
  }
  S3D_FN bool done(int64_t written) const { return written >= count; }
};

}  // namespace occupancy
}  // namespace s3d
