// Multi-scale tri-plane sampling: per-point kernel bodies (CPU and CUDA).
//
// A point (x, y, z) in [-1, 1]^3 is projected onto three axis-aligned planes
// and bilinearly sampled from each, at every scale, with exactly the
// arithmetic of torch.nn.functional.grid_sample(mode="bilinear"). The features
// are reduced over the three planes and then over the scales, and only the
// reduced vector is written: the (points x 3 x C) intermediate that a
// grid_sample-based implementation materialises never exists.
//
// Planes are channels-last, (B, 3, H, W, C) contiguous: the C features of a
// texel are one contiguous run, so each bilinear corner is a single streak of
// memory. Channels are processed in register-sized chunks so that any C works
// without dynamic local arrays.
#pragma once

#include "s3d/common.h"

namespace s3d {
namespace triplane {

constexpr int kMaxScales = 8;
constexpr int kChunk = 8;

enum class PlaneReduce : int { Sum = 0, Mean = 1, Product = 2, Concat = 3 };
enum class ScaleReduce : int { Concat = 0, Sum = 1 };
enum class Padding : int { Zeros = 0, Border = 1 };
// XyXzYz samples the planes at (x, y), (x, z), (y, z); Eg3d reproduces EG3D's
// projection, whose third plane is sampled at (z, x).
enum class Axes : int { XyXzYz = 0, Eg3d = 1 };

template <typename T>
struct Params {
  const T* planes[kMaxScales];  // per scale: (B, 3, H, W, C) contiguous
  int height[kMaxScales];
  int width[kMaxScales];
  int n_scales;
  int64_t batch;     // B
  int64_t n_points;  // N per batch item
  int channels;      // C of every plane
  int out_channels;  // width of one output row
  PlaneReduce plane_reduce;
  ScaleReduce scale_reduce;
  Padding padding;
  Axes axes;
  bool align_corners;
};

// Output channels produced by one scale.
S3D_FN int scale_width(PlaneReduce reduce, int channels) {
  return reduce == PlaneReduce::Concat ? 3 * channels : channels;
}

S3D_FN int out_channels(PlaneReduce plane_reduce, ScaleReduce scale_reduce, int channels,
                        int n_scales) {
  const int per_scale = scale_width(plane_reduce, channels);
  return scale_reduce == ScaleReduce::Concat ? per_scale * n_scales : per_scale;
}

// Which point coordinates address plane k: u (along W) and v (along H).
S3D_FN void plane_axes(Axes axes, int k, int* u_axis, int* v_axis) {
  if (k == 0) {
    *u_axis = 0;
    *v_axis = 1;
  } else if (k == 1) {
    *u_axis = 0;
    *v_axis = 2;
  } else if (axes == Axes::Eg3d) {
    *u_axis = 2;
    *v_axis = 0;
  } else {
    *u_axis = 1;
    *v_axis = 2;
  }
}

// Where one normalised coordinate lands on a row or column of `size` texels,
// as grid_sample computes it, with the derivative of that pixel position with
// respect to the normalised coordinate (0 where border padding clips).
template <typename T>
S3D_FN T pixel_coordinate(T coord, int size, bool align_corners, Padding padding, T* d_pixel) {
  T pixel;
  if (align_corners) {
    pixel = (coord + T(1)) * T(0.5) * T(size - 1);
    *d_pixel = T(0.5) * T(size - 1);
  } else {
    pixel = ((coord + T(1)) * T(size) - T(1)) * T(0.5);
    *d_pixel = T(0.5) * T(size);
  }
  if (coord != coord) return T(-2);  // NaN: a cell outside the plane (make_footprint)
  if (padding == Padding::Border) {
    // grid_sample counts the border itself as clipped (zero gradient).
    if (!(pixel > T(0))) {
      pixel = T(0);
      *d_pixel = T(0);
    } else if (pixel >= T(size - 1)) {
      pixel = T(size - 1);
      *d_pixel = T(0);
    }
  } else {
    // Beyond one texel outside, every corner is padding: value and gradient
    // are zero whatever the exact position, so clamp to keep floor() in the
    // int range (this also maps NaN to padding).
    if (!(pixel > T(-2))) pixel = T(-2);
    if (!(pixel < T(size + 1))) pixel = T(size + 1);
  }
  return pixel;
}

// The four bilinear taps of one point on one plane.
template <typename T>
struct Footprint {
  int64_t offset[4];  // element offsets of the nw, ne, sw, se texels (clamped to 0 if outside)
  T weight[4];        // bilinear weights, 0 for texels outside the plane
  unsigned inside;    // bit j set: texel j lies inside the plane (else padding)
  T fx, fy;           // position inside the cell
  int x0, y0;         // the cell: texel (x0, y0) is the nw corner
  T du_scale, dv_scale;  // d(pixel)/d(normalised coordinate) along u and v

  S3D_FN T in(int j) const { return (inside >> j) & 1u ? T(1) : T(0); }
};

// Built in place: footprints are computed for every point, plane and scale,
// so they are kept small and never copied.
template <typename T>
S3D_FN void make_footprint(T u, T v, int height, int width, int channels, bool align_corners,
                           Padding padding, Footprint<T>* out) {
  Footprint<T>& fp = *out;
  const T ix = pixel_coordinate(u, width, align_corners, padding, &fp.du_scale);
  const T iy = pixel_coordinate(v, height, align_corners, padding, &fp.dv_scale);
  const T x0f = floor_(ix);
  const T y0f = floor_(iy);
  const int x0 = static_cast<int>(x0f);
  const int y0 = static_cast<int>(y0f);
  fp.fx = ix - x0f;
  fp.fy = iy - y0f;
  fp.x0 = x0;
  fp.y0 = y0;
  // Validity per column and row, then the four taps from one base offset.
  const bool x0_in = x0 >= 0 && x0 < width, x1_in = x0 + 1 >= 0 && x0 + 1 < width;
  const bool y0_in = y0 >= 0 && y0 < height, y1_in = y0 + 1 >= 0 && y0 + 1 < height;
  const bool in[4] = {x0_in && y0_in, x1_in && y0_in, x0_in && y1_in, x1_in && y1_in};
  const T wx0 = T(1) - fp.fx, wy0 = T(1) - fp.fy;
  const T w[4] = {wx0 * wy0, fp.fx * wy0, wx0 * fp.fy, fp.fx * fp.fy};
  const int64_t row = static_cast<int64_t>(width) * channels;
  const int64_t base = static_cast<int64_t>(y0) * row + static_cast<int64_t>(x0) * channels;
  const int64_t offsets[4] = {base, base + channels, base + row, base + row + channels};
  fp.inside = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    fp.inside |= in[j] ? (1u << j) : 0u;
    fp.weight[j] = in[j] ? w[j] : T(0);
    fp.offset[j] = in[j] ? offsets[j] : 0;
  }
  if (u != u || v != v) {
    // A NaN coordinate samples NaN, as grid_sample does with zeros padding,
    // reads texel 0 only to be multiplied by NaN, and scatters to no texel.
    const T nan = u != u ? u : v;
    fp.fx = fp.fy = nan;
#pragma unroll
    for (int j = 0; j < 4; ++j) fp.weight[j] = nan;
  }
}

template <typename T>
S3D_FN void footprint_into(const Params<T>& p, int scale, int k, const T* xyz, Footprint<T>* fp) {
  int ua, va;
  plane_axes(p.axes, k, &ua, &va);
  make_footprint(xyz[ua], xyz[va], p.height[scale], p.width[scale], p.channels, p.align_corners,
                 p.padding, fp);
}

template <typename T>
S3D_FN Footprint<T> footprint_of(const Params<T>& p, int scale, int k, const T* xyz) {
  Footprint<T> fp;
  footprint_into(p, scale, k, xyz, &fp);
  return fp;
}

// Start of plane k of batch item b at one scale.
template <typename T>
S3D_FN const T* plane_base(const Params<T>& p, int scale, int64_t b, int k) {
  const int64_t texels = static_cast<int64_t>(p.height[scale]) * p.width[scale];
  return p.planes[scale] + (b * 3 + k) * texels * p.channels;
}

// f[c] = bilinear sample of channels [c0, c0 + n).
template <typename T>
S3D_FN void sample_chunk(const T* plane, const Footprint<T>& fp, int c0, int n, T* f) {
  const T* t0 = plane + fp.offset[0] + c0;
  const T* t1 = plane + fp.offset[1] + c0;
  const T* t2 = plane + fp.offset[2] + c0;
  const T* t3 = plane + fp.offset[3] + c0;
  if (n == kChunk) {
#pragma unroll
    for (int c = 0; c < kChunk; ++c)
      f[c] = fp.weight[0] * t0[c] + fp.weight[1] * t1[c] + fp.weight[2] * t2[c] +
             fp.weight[3] * t3[c];
  } else {
    for (int c = 0; c < n; ++c)
      f[c] = fp.weight[0] * t0[c] + fp.weight[1] * t1[c] + fp.weight[2] * t2[c] +
             fp.weight[3] * t3[c];
  }
}

// Like sample_chunk, plus the derivatives of f with respect to the pixel
// position (fx along W, fy along H), with padding texels counting as zero.
template <typename T>
S3D_FN void sample_chunk_with_grad(const T* plane, const Footprint<T>& fp, int c0, int n, T* f,
                                   T* dfx, T* dfy) {
  const T* t0 = plane + fp.offset[0] + c0;
  const T* t1 = plane + fp.offset[1] + c0;
  const T* t2 = plane + fp.offset[2] + c0;
  const T* t3 = plane + fp.offset[3] + c0;
  const T gx = T(1) - fp.fx, gy = T(1) - fp.fy;
  for (int c = 0; c < n; ++c) {
    const T nw = fp.in(0) * t0[c], ne = fp.in(1) * t1[c];
    const T sw = fp.in(2) * t2[c], se = fp.in(3) * t3[c];
    f[c] = fp.weight[0] * t0[c] + fp.weight[1] * t1[c] + fp.weight[2] * t2[c] +
           fp.weight[3] * t3[c];
    dfx[c] = (ne - nw) * gy + (se - sw) * fp.fy;
    dfy[c] = (sw - nw) * gx + (se - ne) * fp.fx;
  }
}

// Index in the output row of channel c of plane k at a scale.
template <typename T>
S3D_FN int out_index(const Params<T>& p, int scale, int k, int c) {
  int index = c;
  if (p.plane_reduce == PlaneReduce::Concat) index += k * p.channels;
  if (p.scale_reduce == ScaleReduce::Concat)
    index += scale * scale_width(p.plane_reduce, p.channels);
  return index;
}

// Upstream gradient of the sampled feature f_k[c] (plane k, channels [c0, c0+n)),
// given the three planes' samples f (needed by the product).
template <typename T>
S3D_FN void feature_grad(const Params<T>& p, const T* grad_row, int scale, int k, int c0, int n,
                         const T (*f)[kChunk], T* g) {
  for (int c = 0; c < n; ++c) {
    T upstream = grad_row[out_index(p, scale, k, c0 + c)];
    switch (p.plane_reduce) {
      case PlaneReduce::Mean: upstream *= T(1) / T(3); break;
      case PlaneReduce::Product: upstream *= f[(k + 1) % 3][c] * f[(k + 2) % 3][c]; break;
      default: break;
    }
    g[c] = upstream;
  }
}

// Start of the output slot of plane k at a scale (channel 0).
template <typename T>
S3D_FN T* out_slot(const Params<T>& p, T* row, int scale, int k) {
  return row + out_index(p, scale, k, 0);
}

template <typename T>
S3D_FN const T* grad_slot(const Params<T>& p, const T* row, int scale, int k) {
  return row + out_index(p, scale, k, 0);
}

// The three footprints of a point at one scale.
template <typename T>
S3D_FN void point_footprints(const Params<T>& p, int scale, const T* xyz, Footprint<T>* fp) {
#pragma unroll
  for (int k = 0; k < 3; ++k) footprint_into(p, scale, k, xyz, &fp[k]);
}

enum class Store : int { Assign, Add };

// dst[c] (=|+=) factor * bilinear sample of channel c, for all channels: the
// streaming path of sum, mean and concat (no per-channel temporaries).
// kChannels > 0 fixes the channel count at compile time (fully unrolled
// vector code for the common widths); 0 reads it at run time.
template <int kChannels, typename T>
S3D_FN void blend_into(const T* __restrict__ plane, const Footprint<T>& fp, int channels_rt,
                       T factor, Store store, T* __restrict__ dst) {
  const int channels = kChannels > 0 ? kChannels : channels_rt;
  const T* __restrict__ t0 = plane + fp.offset[0];
  const T* __restrict__ t1 = plane + fp.offset[1];
  const T* __restrict__ t2 = plane + fp.offset[2];
  const T* __restrict__ t3 = plane + fp.offset[3];
  const T w0 = fp.weight[0] * factor, w1 = fp.weight[1] * factor;
  const T w2 = fp.weight[2] * factor, w3 = fp.weight[3] * factor;
  if (store == Store::Assign) {
    for (int c = 0; c < channels; ++c) dst[c] = w0 * t0[c] + w1 * t1[c] + w2 * t2[c] + w3 * t3[c];
  } else {
    for (int c = 0; c < channels; ++c) dst[c] += w0 * t0[c] + w1 * t1[c] + w2 * t2[c] + w3 * t3[c];
  }
}

// ---------------------------------------------------------------------------
// Forward of one point at one scale, footprints given. i indexes the B*N points.
template <int kChannels, typename T>
S3D_FN void forward_scale(const Params<T>& p, int scale, int64_t b, const Footprint<T>* fp,
                          T* row) {
  const bool accumulate = p.scale_reduce == ScaleReduce::Sum && scale > 0;
  if (p.plane_reduce != PlaneReduce::Product) {
    const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
    const bool concat = p.plane_reduce == PlaneReduce::Concat;
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      const Store store = (accumulate || (!concat && k > 0)) ? Store::Add : Store::Assign;
      blend_into<kChannels>(plane_base(p, scale, b, k), fp[k], p.channels, factor, store,
                            out_slot(p, row, scale, k));
    }
    return;
  }
  // Product: the three samples of a channel meet, so go chunk by chunk.
  T* dst = out_slot(p, row, scale, 0);
  for (int c0 = 0; c0 < p.channels; c0 += kChunk) {
    const int n = p.channels - c0 < kChunk ? p.channels - c0 : kChunk;
    T f[3][kChunk];
#pragma unroll
    for (int k = 0; k < 3; ++k) sample_chunk(plane_base(p, scale, b, k), fp[k], c0, n, f[k]);
    for (int c = 0; c < n; ++c) {
      const T r = f[0][c] * f[1][c] * f[2][c];
      dst[c0 + c] = accumulate ? dst[c0 + c] + r : r;
    }
  }
}

template <int kChannels = 0, typename T>
S3D_FN void forward_point(const Params<T>& p, const T* points, T* out, int64_t i) {
  const int64_t b = i / p.n_points;
  const T* xyz = points + i * 3;
  T* row = out + i * p.out_channels;
  for (int s = 0; s < p.n_scales; ++s) {
    Footprint<T> fp[3];
    point_footprints(p, s, xyz, fp);
    forward_scale<kChannels>(p, s, b, fp, row);
  }
}

// ---------------------------------------------------------------------------
// Backward to the points.
//
// With texels t_j of the four corners (zero for padding), the derivatives of a
// sample along the pixel axes are linear in t_j:
//   df/dx = (1-fy)(t1 - t0) + fy (t3 - t2),   df/dy = (1-fx)(t2 - t0) + fx (t3 - t1),
// so the gradient of a plane's position is two dot products of the upstream
// gradient with fixed combinations of the corner rows.
template <int kChannels, typename T>
S3D_FN void position_grad(const T* __restrict__ plane, const Footprint<T>& fp,
                          const T* __restrict__ g, T factor, int channels_rt, T* gx_out,
                          T* gy_out) {
  const int channels = kChannels > 0 ? kChannels : channels_rt;
  const T* __restrict__ t0 = plane + fp.offset[0];
  const T* __restrict__ t1 = plane + fp.offset[1];
  const T* __restrict__ t2 = plane + fp.offset[2];
  const T* __restrict__ t3 = plane + fp.offset[3];
  const T ox = T(1) - fp.fx, oy = T(1) - fp.fy;
  const T a0 = -oy * fp.in(0), a1 = oy * fp.in(1), a2 = -fp.fy * fp.in(2), a3 = fp.fy * fp.in(3);
  const T b0 = -ox * fp.in(0), b1 = -fp.fx * fp.in(1), b2 = ox * fp.in(2), b3 = fp.fx * fp.in(3);
  // kLanes independent partial sums: a single running sum would be an
  // in-order chain of dependent adds (compilers may not reassociate floats),
  // lanes vectorise; the final lane sum has a fixed order (deterministic).
  constexpr int kLanes = 8;
  T lx[kLanes], ly[kLanes];
  for (int l = 0; l < kLanes; ++l) lx[l] = ly[l] = T(0);
  int c = 0;
  for (; c + kLanes <= channels; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const int ch = c + l;
      lx[l] += g[ch] * (a0 * t0[ch] + a1 * t1[ch] + a2 * t2[ch] + a3 * t3[ch]);
      ly[l] += g[ch] * (b0 * t0[ch] + b1 * t1[ch] + b2 * t2[ch] + b3 * t3[ch]);
    }
  }
  for (; c < channels; ++c) {
    lx[0] += g[c] * (a0 * t0[c] + a1 * t1[c] + a2 * t2[c] + a3 * t3[c]);
    ly[0] += g[c] * (b0 * t0[c] + b1 * t1[c] + b2 * t2[c] + b3 * t3[c]);
  }
  T gx = T(0), gy = T(0);
  for (int l = 0; l < kLanes; ++l) {
    gx += lx[l];
    gy += ly[l];
  }
  *gx_out = gx * factor;
  *gy_out = gy * factor;
}

// Adds one scale's contribution to the gradient of a point's coordinates.
template <int kChannels, typename T>
S3D_FN void backward_coords_scale(const Params<T>& p, int s, int64_t b, const Footprint<T>* fp,
                                  const T* grad_row, T* grad_xyz) {
  T grad_pixel[3][2];
  if (p.plane_reduce != PlaneReduce::Product) {
    const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
    for (int k = 0; k < 3; ++k)
      position_grad<kChannels>(plane_base(p, s, b, k), fp[k], grad_slot(p, grad_row, s, k), factor,
                               p.channels, &grad_pixel[k][0], &grad_pixel[k][1]);
  } else {
    for (int k = 0; k < 3; ++k) grad_pixel[k][0] = grad_pixel[k][1] = T(0);
    for (int c0 = 0; c0 < p.channels; c0 += kChunk) {
      const int n = p.channels - c0 < kChunk ? p.channels - c0 : kChunk;
      T f[3][kChunk], dfx[3][kChunk], dfy[3][kChunk];
      for (int k = 0; k < 3; ++k)
        sample_chunk_with_grad(plane_base(p, s, b, k), fp[k], c0, n, f[k], dfx[k], dfy[k]);
      for (int k = 0; k < 3; ++k) {
        T g[kChunk];
        feature_grad(p, grad_row, s, k, c0, n, f, g);
        for (int c = 0; c < n; ++c) {
          grad_pixel[k][0] += g[c] * dfx[k][c];
          grad_pixel[k][1] += g[c] * dfy[k][c];
        }
      }
    }
  }
  for (int k = 0; k < 3; ++k) {
    int ua, va;
    plane_axes(p.axes, k, &ua, &va);
    grad_xyz[ua] += grad_pixel[k][0] * fp[k].du_scale;
    grad_xyz[va] += grad_pixel[k][1] * fp[k].dv_scale;
  }
}

template <int kChannels = 0, typename T>
S3D_FN void backward_point_coords(const Params<T>& p, const T* points, const T* grad_out,
                                  T* grad_points, int64_t i) {
  const int64_t b = i / p.n_points;
  const T* xyz = points + i * 3;
  const T* grad_row = grad_out + i * p.out_channels;
  T grad_xyz[3] = {T(0), T(0), T(0)};
  for (int s = 0; s < p.n_scales; ++s) {
    Footprint<T> fp[3];
    point_footprints(p, s, xyz, fp);
    backward_coords_scale<kChannels>(p, s, b, fp, grad_row, grad_xyz);
  }
  grad_points[i * 3 + 0] = grad_xyz[0];
  grad_points[i * 3 + 1] = grad_xyz[1];
  grad_points[i * 3 + 2] = grad_xyz[2];
}

// ---------------------------------------------------------------------------
// Backward to the planes: scatters one point's gradient into plane k of one
// scale, channels [c_begin, c_end). `Add` is AtomicAdd on the GPU and
// ExclusiveAdd on the CPU, whose launcher gives each thread its own
// (scale, batch, plane, channel block) so that no two threads share a texel.
template <typename T, typename Add>
S3D_FN void backward_plane_point(const Params<T>& p, const T* points, const T* grad_out,
                                 T* grad_plane_scale, int scale, int k, int64_t i, int c_begin,
                                 int c_end) {
  const int64_t b = i / p.n_points;
  const T* xyz = points + i * 3;
  const T* grad_row = grad_out + i * p.out_channels;
  const int64_t texels = static_cast<int64_t>(p.height[scale]) * p.width[scale];
  T* grad_plane = grad_plane_scale + (b * 3 + k) * texels * p.channels;

  if (p.plane_reduce != PlaneReduce::Product) {
    const Footprint<T> fp = footprint_of(p, scale, k, xyz);
    const T factor = p.plane_reduce == PlaneReduce::Mean ? T(1) / T(3) : T(1);
    const T* g = grad_slot(p, grad_row, scale, k);
#pragma unroll
    for (int corner = 0; corner < 4; ++corner) {
      const T w = fp.weight[corner] * factor;
      if (w == T(0) || !((fp.inside >> corner) & 1u)) continue;
      T* dst = grad_plane + fp.offset[corner];
      for (int c = c_begin; c < c_end; ++c) Add::add(dst + c, w * g[c]);
    }
    return;
  }

  Footprint<T> fp[3];
  point_footprints(p, scale, xyz, fp);
  if (fp[k].weight[0] == T(0) && fp[k].weight[1] == T(0) && fp[k].weight[2] == T(0) &&
      fp[k].weight[3] == T(0))
    return;
  for (int c0 = c_begin; c0 < c_end; c0 += kChunk) {
    const int n = c_end - c0 < kChunk ? c_end - c0 : kChunk;
    T f[3][kChunk];
    for (int j = 0; j < 3; ++j)
      if (j != k) sample_chunk(plane_base(p, scale, b, j), fp[j], c0, n, f[j]);
    T g[kChunk];
    feature_grad(p, grad_row, scale, k, c0, n, f, g);
#pragma unroll
    for (int corner = 0; corner < 4; ++corner) {
      const T w = fp[k].weight[corner];
      if (w == T(0) || !((fp[k].inside >> corner) & 1u)) continue;
      T* dst = grad_plane + fp[k].offset[corner] + c0;
      for (int c = 0; c < n; ++c) Add::add(dst + c, w * g[c]);
    }
  }
}

}  // namespace triplane
}  // namespace s3d
