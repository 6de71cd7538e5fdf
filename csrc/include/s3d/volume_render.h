// Volume rendering over packed samples: per-ray kernel bodies (CPU and CUDA).
//
// Samples are packed and sorted by ray: ray r owns samples
// [offsets[r], offsets[r + 1]). Every body below walks one ray front to back,
// so a ray is the unit of parallel work on both devices and no output is ever
// written by two workers (deterministic, no atomics).
//
// Notation along one ray: tau_i = sigma_i * (t_end_i - t_start_i),
// a_i = 1 - exp(-tau_i) (or a given alpha), T_i = prod_{j<i} (1 - a_j)
// (exclusive transmittance), w_i = T_i * a_i.
//
// Gradients. For an upstream gradient g_w, g_T, g_a on (w, T, a):
//   dL/da_k = g_w_k T_k + g_a_k - T_k U_k,
//   U_k     = sum_{i>k} (g_w_i a_i + g_T_i) prod_{k<j<i} (1 - a_j),
// with the stable backward recurrence U_{k-1} = g_w_k a_k + g_T_k + (1 - a_k) U_k
// (no division by 1 - a). Density inputs then use dL/dtau_k = (1 - a_k) dL/da_k.
#pragma once

#include "s3d/common.h"

namespace s3d {
namespace volume_render {

// What the per-sample input of a compositing pass holds.
enum class Input : int { Density = 0, Alpha = 1, Weight = 2 };

// Dot product over C channels. The device path keeps 8 independent partial
// sums (a single float accumulator may not be reordered).
template <typename T>
S3D_FN T dot(const T* a, const T* b, int64_t n) {
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
  // GCC left the partial-sum lanes below scalar (32 scalar FMAs per sample
  // in the backward); an OpenMP simd reduction, which may reassociate, is
  // vector code.
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) sum += a[c] * b[c];
  return sum;
#else
  T acc[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[c + j] * b[c + j];
  T tail = T(0);
  for (; c < n; ++c) tail += a[c] * b[c];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
#endif
}

S3D_FN int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

template <typename T>
S3D_FN T alpha_of(Input input, const T* in, const T* t_starts, const T* t_ends, int64_t i) {
  if (input == Input::Density) return T(1) - exp_(-in[i] * (t_ends[i] - t_starts[i]));
  return in[i];
}

// exp for float32 without a library call, so that a block of alphas is one
// vectorised loop: Cephes' expf (range reduction by ln 2 in two parts and a
// degree-6 polynomial, within 2 ulp of the libm result). Below -87.3 it
// returns 0, above 88.7 infinity, NaN stays NaN.
#if !defined(__CUDA_ARCH__)
inline float exp_inline(float x) {
  const float fx = x * 1.44269504088896341f;
  const float n = floor_<float>(fx + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  const float e = q * r * r + r + 1.0f;
  // 2^n through the exponent bits (n is clamped so the shift stays in range).
  const float nc = n < -126.0f ? -126.0f : (n > 127.0f ? 127.0f : n);
  const int32_t bits = (static_cast<int32_t>(nc) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  const float y = e * scale;
  return x < -87.3f ? 0.0f : (x > 88.7f ? __builtin_inff() : y);
}
#endif

// Alphas of samples [i, i + n) into a[]: one vectorisable loop for float32
// densities on the host, the per-sample path otherwise.
template <typename T>
S3D_FN void alphas_of_block(Input input, const T* in, const T* t_starts, const T* t_ends, int64_t i,
                            int64_t n, T* a) {
#if !defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) {
    if (input == Input::Density) {
#if defined(_OPENMP)
#pragma omp simd
#endif
      for (int64_t k = 0; k < n; ++k)
        a[k] = 1.0f - exp_inline(-in[i + k] * (t_ends[i + k] - t_starts[i + k]));
      return;
    }
  }
#endif
  for (int64_t k = 0; k < n; ++k) a[k] = alpha_of(input, in, t_starts, t_ends, i + k);
}

// ---------------------------------------------------------------------------
// render_weight_from_{density,alpha}: (weights, transmittance, alphas) per sample.

template <typename T>
S3D_FN void weights_forward_ray(Input input, int64_t begin, int64_t end, const T* in,
                                const T* t_starts, const T* t_ends, T* weights, T* trans,
                                T* alphas) {
  T transmittance = T(1);
  for (int64_t i = begin; i < end; ++i) {
    const T a = alpha_of(input, in, t_starts, t_ends, i);
    trans[i] = transmittance;
    alphas[i] = a;
    weights[i] = transmittance * a;
    transmittance *= T(1) - a;
  }
}

// Walks the ray back to front over the saved (trans, alphas). Any of the
// upstream gradients may be null (treated as zero).
template <typename T>
S3D_FN void weights_backward_ray(Input input, int64_t begin, int64_t end, const T* t_starts,
                                 const T* t_ends, const T* trans, const T* alphas,
                                 const T* grad_weights, const T* grad_trans, const T* grad_alphas,
                                 T* grad_in) {
  T suffix = T(0);  // U_i of the header
  for (int64_t i = end - 1; i >= begin; --i) {
    const T a = alphas[i];
    const T tr = trans[i];
    const T gw = grad_weights ? grad_weights[i] : T(0);
    const T gt = grad_trans ? grad_trans[i] : T(0);
    const T ga = grad_alphas ? grad_alphas[i] : T(0);
    const T d_alpha = gw * tr + ga - tr * suffix;
    suffix = gw * a + gt + (T(1) - a) * suffix;
    grad_in[i] = input == Input::Density ? d_alpha * (T(1) - a) * (t_ends[i] - t_starts[i])
                                         : d_alpha;
  }
}

// ---------------------------------------------------------------------------
// composite: per-ray C-channel values, opacity and depth in one pass.
//
// values: (S, C) row-major, colors: (R, C). t_starts/t_ends may be null (then
// depth is not computed). With early_stop_eps > 0 a ray stops after the sample
// that takes its transmittance below the threshold; backward stops at the same
// sample because it recomputes the same arithmetic.

template <typename T>
struct CompositeArgs {
  Input input;
  const int64_t* offsets;  // (R + 1)
  const T* in;             // (S,) densities, alphas or weights
  const T* t_starts;       // (S,) or null
  const T* t_ends;         // (S,) or null
  const T* values;         // (S, C) or null when C == 0
  int64_t channels;
  T early_stop_eps;
};

// Samples whose alphas are computed together, in one vectorised loop
// (alphas_of_block), before their channels are touched: alternating a
// scalar exp and the channel loop sample by sample measured about 1.5x
// slower in the forward. The GPU keeps the plain per-sample loop.
#if defined(__CUDA_ARCH__)
constexpr int kSampleBlock = 1;
#else
constexpr int kSampleBlock = 64;
#endif

// kChannels > 0 fixes the channel count at compile time: the per-ray sums
// then live in registers (a run-time count accumulates through memory that
// the compiler must assume may alias the values) and the channel loops are
// unrolled vector code.
template <int kChannels = 0, typename T>
S3D_FN void composite_forward_ray(const CompositeArgs<T>& p, int64_t ray, T* colors, T* opacity,
                                  T* depth) {
  const int64_t begin = p.offsets[ray], end = p.offsets[ray + 1];
  const int64_t C = kChannels > 0 ? kChannels : p.channels;
  T* out = colors + ray * C;
  T local[kChannels > 0 ? kChannels : 1];
  T* sum = kChannels > 0 ? local : out;
  for (int64_t c = 0; c < C; ++c) sum[c] = T(0);
  T transmittance = T(1), acc = T(0), dep = T(0);
  bool stopped = false;
  for (int64_t i0 = begin; i0 < end && !stopped; i0 += kSampleBlock) {
    const int64_t n = min_i64(kSampleBlock, end - i0);
    // The block's alphas and weights first, then its channels.
    T w[kSampleBlock];
    if (p.input != Input::Weight) alphas_of_block(p.input, p.in, p.t_starts, p.t_ends, i0, n, w);
    int64_t m = 0;
    while (m < n) {
      const int64_t i = i0 + m;
      T wi;
      if (p.input == Input::Weight) {
        wi = p.in[i];
      } else {
        const T a = w[m];
        wi = transmittance * a;
        transmittance *= T(1) - a;
      }
      w[m++] = wi;
      acc += wi;
      if (p.t_starts) dep += wi * T(0.5) * (p.t_starts[i] + p.t_ends[i]);
      if (p.input != Input::Weight && transmittance < p.early_stop_eps) {
        stopped = true;
        break;
      }
    }
    for (int64_t j = 0; j < m; ++j) {
      const T* v = p.values + (i0 + j) * C;
      for (int64_t c = 0; c < C; ++c) sum[c] += w[j] * v[c];
    }
  }
  if (kChannels > 0)
    for (int64_t c = 0; c < C; ++c) out[c] = local[c];
  opacity[ray] = acc;
  if (depth) depth[ray] = dep;
}

// Re-walks the ray front to back, recomputing T_i and w_i; the suffix sum
// sum_{j>i} g_w_j w_j comes from the saved outputs (total minus prefix), so
// the backward needs O(1) memory per ray and one pass that reads each value
// row once (for g_w_i) and writes its gradient row once (w_i g). grad_in /
// grad_values may be null when not needed. Samples past an early stop get
// zero gradient.
// U = sum_{j >= first} g_w_j a_j prod_{first <= k < j} (1 - a_k): what the samples from
// ``first`` on add per unit of transmittance in front of them. It stops where that
// transmittance reaches 0 (the next alpha of exactly 1), so summing it at every alpha
// of 1 along a ray stays linear in the ray's samples.
template <int kChannels, typename T>
S3D_FN T weighted_alpha_suffix(const CompositeArgs<T>& p, const T* g, T g_op, T g_dep,
                               int64_t first, int64_t end) {
  const int64_t C = kChannels > 0 ? kChannels : p.channels;
  T sum = T(0), through = T(1);
  for (int64_t k = first; k < end && through > T(0); ++k) {
    T gw = g_op;
    if (g) gw += dot(g, p.values + k * C, C);
    if (g_dep != T(0)) gw += g_dep * T(0.5) * (p.t_starts[k] + p.t_ends[k]);
    const T a = alpha_of(p.input, p.in, p.t_starts, p.t_ends, k);
    sum += gw * a * through;
    through *= T(1) - a;
  }
  return sum;
}

template <int kChannels = 0, typename T>
S3D_FN void composite_backward_ray(const CompositeArgs<T>& p, int64_t ray, const T* colors,
                                   const T* opacity, const T* depth, const T* grad_colors,
                                   const T* grad_opacity, const T* grad_depth, T* grad_in,
                                   T* grad_values) {
  const int64_t begin = p.offsets[ray], end = p.offsets[ray + 1];
  const int64_t C = kChannels > 0 ? kChannels : p.channels;
  const T* g = grad_colors ? grad_colors + ray * C : nullptr;
  T g_local[kChannels > 0 ? kChannels : 1];
  if (kChannels > 0 && g) {
    for (int64_t c = 0; c < C; ++c) g_local[c] = g[c];
    g = g_local;
  }
  const T g_op = grad_opacity ? grad_opacity[ray] : T(0);
  const T g_dep = (grad_depth && p.t_starts) ? grad_depth[ray] : T(0);

  // total = sum_i g_w_i w_i, from the forward's outputs.
  T total = g_op * opacity[ray];
  if (g_dep != T(0)) total += g_dep * depth[ray];
  if (g) total += dot(g, colors + ray * C, C);

  T transmittance = T(1), prefix = T(0);
  bool stopped = false;
  T alphas[kSampleBlock];
  for (int64_t i = begin; i < end; ++i) {
    const int64_t j = (i - begin) % kSampleBlock;
    if (j == 0 && !stopped && p.input != Input::Weight) {
      // The block's alphas first (one vectorised loop for float32), then its channels.
      const int64_t n = min_i64(kSampleBlock, end - i);
      alphas_of_block(p.input, p.in, p.t_starts, p.t_ends, i, n, alphas);
    }
    if (stopped) {
      if (grad_in) grad_in[i] = T(0);
      if (grad_values)
        for (int64_t c = 0; c < C; ++c) grad_values[i * C + c] = T(0);
      continue;
    }
    const T* v = p.values + i * C;
    T gw = g_op;
    if (g) gw += dot(g, v, C);
    if (g_dep != T(0)) gw += g_dep * T(0.5) * (p.t_starts[i] + p.t_ends[i]);

    T w, a = T(0);
    if (p.input == Input::Weight) {
      w = p.in[i];
      if (grad_in) grad_in[i] = gw;
    } else {
      a = alphas[j];
      w = transmittance * a;
      prefix += gw * w;
      const T suffix = total - prefix;  // sum_{j>i} g_w_j w_j = T_{i+1} U_i
      const T one_minus_a = T(1) - a;
      if (grad_in) {
        if (p.input == Input::Density) {
          // dL/dtau_i = g_w_i T_{i+1} - sum_{j>i} g_w_j w_j
          grad_in[i] = (gw * transmittance * one_minus_a - suffix) * (p.t_ends[i] - p.t_starts[i]);
        } else {
          // dL/da_i = g_w_i T_i - T_i U_i; T_i U_i = suffix / (1 - a_i). An alpha
          // of exactly 1 zeroes the suffix but not U_i, on which the samples behind
          // still depend unless the march stops there: then U_i is summed directly.
          T behind = T(0);
          if (one_minus_a > T(0))
            behind = suffix / one_minus_a;
          else if (!(T(0) < p.early_stop_eps))
            behind = transmittance *
                     weighted_alpha_suffix<kChannels>(p, g, g_op, g_dep, i + 1, end);
          grad_in[i] = gw * transmittance - behind;
        }
      }
      transmittance *= one_minus_a;
    }
    if (grad_values) {
      T* gv = grad_values + i * C;
      if (g) {
        for (int64_t c = 0; c < C; ++c) gv[c] = w * g[c];
      } else {
        for (int64_t c = 0; c < C; ++c) gv[c] = T(0);
      }
    }
    if (p.input != Input::Weight && transmittance < p.early_stop_eps) stopped = true;
  }
}

// ---------------------------------------------------------------------------
// Ray offsets of sorted packed samples, one sample per worker: sample i
// opens rays ray_indices[i - 1] + 1 .. ray_indices[i]. Returns an error bit
// set (1: not sorted, 2: out of [0, n_rays)) for that sample, 0 if fine.
template <typename I>
S3D_FN int ray_offsets_sample(const I* ray_indices, int64_t n_samples, int64_t n_rays, int64_t i,
                              int64_t* offsets) {
  const int64_t cur = static_cast<int64_t>(ray_indices[i]);
  const int64_t prev = i == 0 ? -1 : static_cast<int64_t>(ray_indices[i - 1]);
  int err = 0;
  if (cur < prev) err |= 1;
  if (cur < 0 || cur >= n_rays) err |= 2;
  if (err) return err;
  // An out-of-range previous index is its own sample's error; never write before offsets[0].
  for (int64_t r = prev < 0 ? 0 : prev + 1; r <= cur; ++r) offsets[r] = i;
  if (i == n_samples - 1)
    for (int64_t r = cur + 1; r <= n_rays; ++r) offsets[r] = n_samples;
  return 0;
}

}  // namespace volume_render
}  // namespace s3d
