// A small multilayer perceptron (tiny-cuda-nn's FullyFusedMLP / CutlassMLP):
// bias-free layers y = act(x W^T) chained, every layer computed for a tile of
// rows while those rows stay in cache (CPU) or in one thread (CUDA).
//
// All layer products go through one register-blocked tile product, `gemm_rows`:
// out[r][c] = sum_j a[r, j] * b[j][c] with strided `a`, contiguous `b` rows, and
// an epilogue that consumes the accumulators (activation and store, the
// activation's derivative, or a weight-gradient sum). On the host its columns
// are SIMD vectors (AVX-512 or AVX2) and several rows share each weight load;
// under CUDA a "vector" is one scalar and a thread takes one row.
//
// Layouts (row-major, row counts padded to the launcher's tile):
//   input   xin (rows, Kp0): the input columns, then `in_ones` columns of ones
//           (tcnn's padding, which acts as a first-layer bias), then zeros to Kp0
//   weights W_l (Mp_l, Kp_l) as given, zero-padded to multiples of 16, and its
//           transpose Wt_l (Kp_l, Mp_l), both laid out once per call
//   hidden  H_l (rows, width), each hidden layer's activated output (kept for
//           the backward pass)
// where Kp, Mp are the layer's input and output widths rounded up to 16.
#pragma once

#include "s3d/common.h"

#if !defined(__CUDACC__) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#endif

#if defined(__CUDACC__)
#define S3D_UNROLL _Pragma("unroll")
#elif defined(__clang__)
#define S3D_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define S3D_UNROLL _Pragma("GCC unroll 16")
#else
#define S3D_UNROLL
#endif

// Keeps a loaded weight vector in a register: otherwise the host compiler
// folds the load into every row's FMA and the loop is bound by loads.
#if !defined(__CUDACC__) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__AVX512F__) || defined(__AVX2__))
#define S3D_IN_REGISTER(x) asm("" : "+v"(x))
#else
#define S3D_IN_REGISTER(x)
#endif

namespace s3d {
namespace mlp {

// tcnn's names; the derivative of each is computed from its output.
enum class Activation : int {
  None = 0,
  ReLU = 1,
  LeakyReLU = 2,
  Exponential = 3,
  Sigmoid = 4,
  Tanh = 5,
};
constexpr int kNumActivations = 6;

constexpr int kAlign = 16;  // every width is padded to this
constexpr int kMaxLayers = 9;  // up to 8 hidden layers

S3D_FN int round_up(int n, int step) { return (n + step - 1) / step * step; }

template <typename T>
struct Params {
  int64_t n_rows = 0;
  int n_layers = 0;  // hidden layers + 1
  int width = 0;     // hidden width (multiple of 16)
  int in_cols = 0;   // input columns given
  int in_ones = 0;   // implicit columns of ones after them
  int out_cols = 0;  // output columns
  Activation hidden = Activation::ReLU;
  Activation output = Activation::None;
  // Weights as given: layer l is (out_l, in_l) row-major.
  const T* weights[kMaxLayers] = {};

  S3D_FN int in_width(int l) const { return l == 0 ? in_cols + in_ones : width; }
  S3D_FN int out_width(int l) const { return l == n_layers - 1 ? out_cols : width; }
  S3D_FN int kp(int l) const { return round_up(in_width(l), kAlign); }
  S3D_FN int mp(int l) const { return round_up(out_width(l), kAlign); }
  S3D_FN Activation act(int l) const { return l == n_layers - 1 ? output : hidden; }
};

// Offsets of the laid-out weights: layer l's W at w_offset(l), its
// transpose at w_offset(l) + mp(l) * kp(l).
template <typename T>
S3D_FN int64_t w_offset(const Params<T>& p, int l) {
  int64_t off = 0;
  for (int i = 0; i < l; ++i) off += 2 * static_cast<int64_t>(p.mp(i)) * p.kp(i);
  return off;
}

template <typename T>
S3D_FN int64_t layout_size(const Params<T>& p) {
  return w_offset(p, p.n_layers);
}

// Element e of the laid-out weights (0 <= e < layout_size): one per thread on
// the GPU, a loop on the CPU.
template <typename T>
S3D_FN T layout_element(const Params<T>& p, int64_t e) {
  int l = 0;
  while (e >= w_offset(p, l + 1)) ++l;
  e -= w_offset(p, l);
  const int mp = p.mp(l), kp = p.kp(l), m_n = p.out_width(l), k_n = p.in_width(l);
  const int64_t half = static_cast<int64_t>(mp) * kp;
  int m, k;
  if (e < half) {
    m = static_cast<int>(e / kp), k = static_cast<int>(e % kp);
  } else {
    k = static_cast<int>((e - half) / mp), m = static_cast<int>((e - half) % mp);
  }
  return m < m_n && k < k_n ? p.weights[l][static_cast<int64_t>(m) * k_n + k] : T(0);
}

// Input row r of xin (Kp0 columns) from x (in_cols columns).
template <typename T>
S3D_FN void pad_input_row(const Params<T>& p, const T* x_row, T* xin_row) {
  const int kp = p.kp(0);
  for (int k = 0; k < kp; ++k)
    xin_row[k] = k < p.in_cols ? x_row[k] : (k < p.in_cols + p.in_ones ? T(1) : T(0));
}

// ---- activations ---------------------------------------------------------

template <typename T>
S3D_FN T tanh_(T x);
template <>
S3D_FN float tanh_<float>(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return __builtin_tanhf(x);
#endif
}
template <>
S3D_FN double tanh_<double>(double x) {
#if defined(__CUDA_ARCH__)
  return ::tanh(x);
#else
  return __builtin_tanh(x);
#endif
}

template <typename T>
S3D_FN T activate(Activation a, T x) {
  switch (a) {
    case Activation::ReLU: return x < T(0) ? T(0) : x;  // NaN stays NaN, as torch's
    case Activation::LeakyReLU: return x > T(0) ? x : T(0.01) * x;
    case Activation::Exponential: return exp_(x);
    case Activation::Sigmoid: return T(1) / (T(1) + exp_(-x));
    case Activation::Tanh: return tanh_(x);
    default: return x;
  }
}

// d act / d x, from the activation's output y.
template <typename T>
S3D_FN T derivative(Activation a, T y) {
  switch (a) {
    case Activation::ReLU: return y > T(0) ? T(1) : T(0);
    case Activation::LeakyReLU: return y > T(0) ? T(1) : T(0.01);
    case Activation::Exponential: return y;
    case Activation::Sigmoid: return (T(1) - y) * y;
    case Activation::Tanh: return T(1) - y * y;
    default: return T(1);
  }
}

// ---- SIMD lanes ------------------------------------------------------------

// Vec<T>::type: kLanes values handled as one. Host: an AVX-512 (or AVX2)
// register; CUDA (and without AVX): one scalar.
template <typename T>
struct Vec {
  using type = T;
  static constexpr int kLanes = 1;
  S3D_FN static type load(const T* p) { return *p; }
  S3D_FN static void store(T* p, type v) { *p = v; }
  S3D_FN static type splat(T x) { return x; }
  S3D_FN static type fma(type a, type b, type c) { return a * b + c; }
  S3D_FN static T lane(type v, int) { return v; }
  S3D_FN static type relu(type v) { return v < T(0) ? T(0) : v; }
  S3D_FN static type mask(type d, type y) { return y > T(0) ? d : T(0); }
};

#if !defined(__CUDACC__) && defined(__AVX512F__)
template <>
struct Vec<float> {
  using type = __m512;
  static constexpr int kLanes = 16;
  static inline type load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, type v) { _mm512_storeu_ps(p, v); }
  static inline type splat(float x) { return _mm512_set1_ps(x); }
  static inline type fma(type a, type b, type c) { return _mm512_fmadd_ps(a, b, c); }
  static inline float lane(type v, int i) { return v[i]; }
  // max returns its second operand where one is NaN: NaN stays NaN
  static inline type relu(type v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }
  static inline type mask(type d, type y) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), d);
  }
};
template <>
struct Vec<double> {
  using type = __m512d;
  static constexpr int kLanes = 8;
  static inline type load(const double* p) { return _mm512_loadu_pd(p); }
  static inline void store(double* p, type v) { _mm512_storeu_pd(p, v); }
  static inline type splat(double x) { return _mm512_set1_pd(x); }
  static inline type fma(type a, type b, type c) { return _mm512_fmadd_pd(a, b, c); }
  static inline double lane(type v, int i) { return v[i]; }
  static inline type relu(type v) { return _mm512_max_pd(_mm512_setzero_pd(), v); }
  static inline type mask(type d, type y) {
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(y, _mm512_setzero_pd(), _CMP_GT_OQ), d);
  }
};
#elif !defined(__CUDACC__) && defined(__AVX2__)
template <>
struct Vec<float> {
  using type = __m256;
  static constexpr int kLanes = 8;
  static inline type load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, type v) { _mm256_storeu_ps(p, v); }
  static inline type splat(float x) { return _mm256_set1_ps(x); }
  static inline type fma(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }
  static inline float lane(type v, int i) { return v[i]; }
  static inline type relu(type v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
  static inline type mask(type d, type y) {
    return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), d);
  }
};
template <>
struct Vec<double> {
  using type = __m256d;
  static constexpr int kLanes = 4;
  static inline type load(const double* p) { return _mm256_loadu_pd(p); }
  static inline void store(double* p, type v) { _mm256_storeu_pd(p, v); }
  static inline type splat(double x) { return _mm256_set1_pd(x); }
  static inline type fma(type a, type b, type c) { return _mm256_fmadd_pd(a, b, c); }
  static inline double lane(type v, int i) { return v[i]; }
  static inline type relu(type v) { return _mm256_max_pd(_mm256_setzero_pd(), v); }
  static inline type mask(type d, type y) {
    return _mm256_and_pd(_mm256_cmp_pd(y, _mm256_setzero_pd(), _CMP_GT_OQ), d);
  }
};
#endif

// Vectors per column chunk: 4 registers on the host (64 floats with AVX-512),
// 16 scalars on the GPU. Every width is a multiple of 16, so of kLanes.
template <typename T>
S3D_HOST_DEVICE constexpr int max_chunk() {
  return Vec<T>::kLanes == 1 ? kAlign : 4;
}

// ---- the tile product --------------------------------------------------------

// acc[i][v] += sum_{j < depth} a[i * a_row + j * a_col] * b[j * b_row + v * lanes ...]
template <int ROWS, int NV, typename T>
S3D_HOT_FN void mac(int depth, const T* a, int64_t a_row, int64_t a_col, const T* b, int64_t b_row,
                    typename Vec<T>::type (&acc)[ROWS][NV]) {
  using V = Vec<T>;
  for (int j = 0; j < depth; ++j) {
    typename V::type bv[NV];
    S3D_UNROLL for (int v = 0; v < NV; ++v) {
      bv[v] = V::load(b + j * b_row + v * V::kLanes);
      S3D_IN_REGISTER(bv[v]);
    }
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      const typename V::type ai = V::splat(a[i * a_row + j * a_col]);
      S3D_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
  }
}

template <int ROWS, int NV, typename T, typename Epilogue>
S3D_HOT_FN void gemm_chunk(int rows, int c0, int depth, const T* a, int64_t a_row, int64_t a_col,
                           const T* b, int64_t b_row, Epilogue& epi) {
  using V = Vec<T>;
  // rows is a multiple of ROWS, or the tile has room up to the next multiple
  for (int r0 = 0; r0 < rows; r0 += ROWS) {
    typename V::type acc[ROWS][NV];
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      S3D_UNROLL for (int v = 0; v < NV; ++v) acc[i][v] = V::splat(T(0));
    }
    mac<ROWS, NV, T>(depth, a + r0 * a_row, a_row, a_col, b + c0, b_row, acc);
    epi.template store<ROWS, NV>(r0, c0, acc);
  }
}

// For r < rows, c < cols (a multiple of 16): epi.store<R, NV>(r0, c0, acc)
// receives sum_j a[r, j] * b[j][c] for rows r0 .. r0 + R and columns
// c0 .. c0 + NV * lanes. R is ROWS, or on the host 2 or 4 times ROWS for
// narrow chunks (so that as many accumulators share each load); rows past
// `rows` up to the next multiple of 4 * ROWS may be computed, so the caller's
// buffers must have them (every tile and padded weight block does).
template <int ROWS, typename T, typename Epilogue>
S3D_HOT_FN void gemm_rows(int rows, int cols, int depth, const T* a, int64_t a_row, int64_t a_col,
                          const T* b, int64_t b_row, Epilogue& epi) {
  constexpr int L = Vec<T>::kLanes;
  constexpr int C = max_chunk<T>();
  for (int c0 = 0; c0 < cols; c0 += C * L) {
    const int nv = (cols - c0) / L < C ? (cols - c0) / L : C;
    if (nv == C) {
      gemm_chunk<ROWS, C, T>(rows, c0, depth, a, a_row, a_col, b, b_row, epi);
    } else if (L > 1) {
      // only the host has partial chunks (C = 4 vectors; a width of 16, 32 or 48 floats left)
      switch (nv) {
        case 1: gemm_chunk<4 * ROWS, 1, T>(rows, c0, depth, a, a_row, a_col, b, b_row, epi); break;
        case 2: gemm_chunk<2 * ROWS, 2, T>(rows, c0, depth, a, a_row, a_col, b, b_row, epi); break;
        case 3: gemm_chunk<ROWS, 3, T>(rows, c0, depth, a, a_row, a_col, b, b_row, epi); break;
        default: break;
      }
    }
  }
}

// ---- epilogues ----------------------------------------------------------------

// Forward: dst[r][c] = act(acc) for r < valid_rows, c < valid_cols.
template <typename T>
struct ActivateStore {
  T* dst;
  int64_t stride;
  int valid_rows, valid_cols;
  Activation act;
  template <int ROWS, int NV>
  S3D_HOT_FN void store(int r0, int c0, typename Vec<T>::type (&acc)[ROWS][NV]) {
    using V = Vec<T>;
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      if (r0 + i >= valid_rows) break;
      T* row = dst + (r0 + i) * stride;
      S3D_UNROLL for (int v = 0; v < NV; ++v) {
        const int c = c0 + v * V::kLanes;
        if (c + V::kLanes <= valid_cols && (act == Activation::ReLU || act == Activation::None)) {
          V::store(row + c, act == Activation::ReLU ? V::relu(acc[i][v]) : acc[i][v]);
        } else {
          for (int e = 0; e < V::kLanes && c + e < valid_cols; ++e)
            row[c + e] = activate(act, V::lane(acc[i][v], e));
        }
      }
    }
  }
};

// Backward through a hidden activation: dst[r][c] = acc * act'(y[r][c]), y the
// activation's output (same stride as dst).
template <typename T>
struct DerivativeStore {
  T* dst;
  const T* y;
  int64_t stride;
  Activation act;
  template <int ROWS, int NV>
  S3D_HOT_FN void store(int r0, int c0, typename Vec<T>::type (&acc)[ROWS][NV]) {
    using V = Vec<T>;
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      T* row = dst + (r0 + i) * stride;
      const T* y_row = y + (r0 + i) * stride;
      S3D_UNROLL for (int v = 0; v < NV; ++v) {
        const int c = c0 + v * V::kLanes;
        if (act == Activation::ReLU) {
          V::store(row + c, V::mask(acc[i][v], V::load(y_row + c)));
        } else if (act == Activation::None) {
          V::store(row + c, acc[i][v]);
        } else {
          for (int e = 0; e < V::kLanes; ++e)
            row[c + e] = V::lane(acc[i][v], e) * derivative(act, y_row[c + e]);
        }
      }
    }
  }
};

// The input gradient: dst[r][c] = acc for r < valid_rows, c < valid_cols.
template <typename T>
struct PlainStore {
  T* dst;
  int64_t stride;
  int valid_rows, valid_cols;
  template <int ROWS, int NV>
  S3D_HOT_FN void store(int r0, int c0, typename Vec<T>::type (&acc)[ROWS][NV]) {
    using V = Vec<T>;
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      if (r0 + i >= valid_rows) break;
      T* row = dst + (r0 + i) * stride;
      S3D_UNROLL for (int v = 0; v < NV; ++v) {
        const int c = c0 + v * V::kLanes;
        if (c + V::kLanes <= valid_cols) {
          V::store(row + c, acc[i][v]);
        } else {
          for (int e = 0; e < V::kLanes && c + e < valid_cols; ++e) row[c + e] = V::lane(acc[i][v], e);
        }
      }
    }
  }
};

// Weight gradient: dst[r][c] += acc (dst a padded (Mp, Kp) accumulator owned
// by the caller), through the add policy.
template <typename T, typename Add>
struct AccumulateStore {
  T* dst;
  int64_t stride;
  template <int ROWS, int NV>
  S3D_HOT_FN void store(int r0, int c0, typename Vec<T>::type (&acc)[ROWS][NV]) {
    using V = Vec<T>;
    S3D_UNROLL for (int i = 0; i < ROWS; ++i) {
      T* row = dst + (r0 + i) * stride;
      S3D_UNROLL for (int v = 0; v < NV; ++v) {
        const int c = c0 + v * V::kLanes;
        if (V::kLanes > 1) {
          V::store(row + c, V::load(row + c) + acc[i][v]);
        } else {
          for (int e = 0; e < V::kLanes; ++e) Add::add(row + c + e, V::lane(acc[i][v], e));
        }
      }
    }
  }
};

// ---- passes over a tile of rows ------------------------------------------------

// Forward of `rows` rows (a multiple of ROWS): xin (rows, Kp0); hidden[l] the
// rows of H_l (stride width); out (valid_rows, out_cols).
template <int ROWS, typename T>
S3D_HOT_FN void forward_rows(const Params<T>& p, const T* layout, int rows, int valid_rows,
                             const T* xin, T* const* hidden, T* out) {
  const T* in = xin;
  int64_t in_stride = p.kp(0);
  for (int l = 0; l < p.n_layers; ++l) {
    const T* wt = layout + w_offset(p, l) + static_cast<int64_t>(p.mp(l)) * p.kp(l);
    const bool last = l == p.n_layers - 1;
    ActivateStore<T> epi{last ? out : hidden[l], last ? p.out_cols : p.width,
                         last ? valid_rows : rows, last ? p.out_cols : p.width, p.act(l)};
    gemm_rows<ROWS, T>(rows, p.mp(l), p.in_width(l), in, in_stride, 1, wt, p.mp(l), epi);
    if (!last) in = hidden[l], in_stride = p.width;
  }
}

// Backward of `rows` rows, from the output gradient to each layer's
// pre-activation gradient dz[l] (rows, Mp_l), and the input gradient grad_x
// (valid_rows, in_cols) when not null. dz[last] must already hold
// grad_out * act'(out), zero in the padded columns and rows.
template <int ROWS, typename T>
S3D_HOT_FN void backward_rows(const Params<T>& p, const T* layout, int rows, int valid_rows,
                              T* const* hidden, T* const* dz, T* grad_x) {
  for (int l = p.n_layers - 1; l >= 0; --l) {
    if (l == 0 && grad_x == nullptr) break;
    const T* w = layout + w_offset(p, l);
    // the sums run over the layer's real outputs only (dz is zero past them)
    const int mp = p.mp(l), kp = p.kp(l), depth = p.out_width(l);
    if (l > 0) {
      DerivativeStore<T> epi{dz[l - 1], hidden[l - 1], p.width, p.hidden};
      gemm_rows<ROWS, T>(rows, p.width, depth, dz[l], mp, 1, w, kp, epi);
    } else {
      PlainStore<T> epi{grad_x, p.in_cols, valid_rows, p.in_cols};
      gemm_rows<ROWS, T>(rows, kp, depth, dz[0], mp, 1, w, kp, epi);
    }
  }
}

// The output layer's pre-activation gradient of row r into dz_row (Mp
// columns, zero past out_cols).
template <typename T>
S3D_FN void output_dz_row(const Params<T>& p, const T* grad_row, const T* out_row, T* dz_row) {
  const int mp = p.mp(p.n_layers - 1);
  for (int c = 0; c < mp; ++c)
    dz_row[c] = c < p.out_cols ? grad_row[c] * derivative(p.output, out_row[c]) : T(0);
}

// dW_l accumulation over `rows` rows: acc (Mp_l, Kp_l) += dz_l^T in_l, in_l
// the layer's input rows (stride Kp_l); only the weight rows up to the layer's
// outputs rounded up to ROWS (a divisor of 16) are touched.
template <int ROWS, typename T, typename Add>
S3D_HOT_FN void weight_grad_rows(const Params<T>& p, int l, int rows, const T* dz_l,
                                 int64_t dz_stride, const T* in_l, T* acc) {
  AccumulateStore<T, Add> epi{acc, p.kp(l)};
  gemm_rows<ROWS, T>(round_up(p.out_width(l), ROWS), p.kp(l), rows, dz_l, 1, dz_stride, in_l,
                     p.kp(l), epi);
}

}  // namespace mlp
}  // namespace s3d
