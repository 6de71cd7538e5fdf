// Using the tri-plane kernels from C++ without Python: sample a 2x2 ramp at
// one point and check the bilinear value and its gradient by hand.
#include <cmath>
#include <cstdio>
#include <vector>

#include "s3d/triplane_launchers.h"

int main() {
  namespace tp = s3d::triplane;
  // One batch item, 3 planes of 2x2 texels, 1 channel; texel value = x + 10 y.
  std::vector<float> planes(3 * 2 * 2);
  for (int k = 0; k < 3; ++k)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) planes[(k * 2 + y) * 2 + x] = float(x + 10 * y);

  tp::Params<float> p{};
  p.planes[0] = planes.data();
  p.height[0] = p.width[0] = 2;
  p.n_scales = 1;
  p.batch = 1;
  p.n_points = 1;
  p.channels = 1;
  p.plane_reduce = tp::PlaneReduce::Concat;
  p.scale_reduce = tp::ScaleReduce::Concat;
  p.padding = tp::Padding::Border;
  p.axes = tp::Axes::XyXzYz;
  p.align_corners = true;
  p.out_channels = tp::out_channels(p.plane_reduce, p.scale_reduce, p.channels, p.n_scales);

  // align_corners: u = -1 is texel 0, u = 1 texel 1, so pixel = (u + 1) / 2.
  const float point[3] = {0.5f, -0.5f, 0.0f};
  std::vector<float> out(p.out_channels);
  tp::cpu::forward(p, point, out.data(), 1);
  // plane 0 at (x, y): 0.75 + 10 * 0.25; plane 1 at (x, z): 0.75 + 10 * 0.5;
  // plane 2 at (y, z): 0.25 + 10 * 0.5.
  const float expected[3] = {3.25f, 5.75f, 5.25f};

  std::vector<float> grad_out(p.out_channels, 1.0f), grad_points(3),
      grad_planes(planes.size(), 0.0f);
  float* grad_plane_ptrs[1] = {grad_planes.data()};
  tp::cpu::backward(p, point, grad_out.data(), grad_points.data(), grad_plane_ptrs, 1);
  // d/dx: planes 0 and 1 give 1 * 0.5 each; d/dy: 10 * 0.5 (plane 0) + 1 * 0.5 (plane 2);
  // d/dz: 10 * 0.5 (plane 1) + 10 * 0.5 (plane 2).
  const float expected_grad[3] = {1.0f, 5.5f, 10.0f};

  int failures = 0;
  for (int k = 0; k < 3; ++k) {
    if (std::fabs(out[k] - expected[k]) > 1e-5f) {
      std::printf("plane %d: got %f, expected %f\n", k, out[k], expected[k]);
      ++failures;
    }
    if (std::fabs(grad_points[k] - expected_grad[k]) > 1e-5f) {
      std::printf("d/dpoint[%d]: got %f, expected %f\n", k, grad_points[k], expected_grad[k]);
      ++failures;
    }
  }
  std::printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
