"""tiny-cuda-nn's ``SphericalHarmonics`` encoding: real spherical harmonics of bands
0..degree-1 (degree^2 outputs, index l*l + l + m, m = -l..l, Condon-Shortley phase), of
directions given in [0, 1]^3 (tcnn's convention: the unit vector v as (v + 1) / 2).

Each band is a polynomial in (x, y, z) = 2 * input - 1 written with z^2 + x^2 + y^2 = 1
folded in as tcnn's tables are (e.g. 3 z^2 - 1 for l = 2, m = 0), so values agree with
tcnn's also for inputs that are not unit vectors. Built by recurrence: the azimuthal parts
Re/Im (x + iy)^m, times associated Legendre polynomials in z without their (1 - z^2)^(m/2).
"""

from __future__ import annotations

import math

import torch

from ._config import check_keys, positive_int, refuse_value
from .encoding_base import EncodingSpec

MAX_DEGREE = 8


def _normalisation(band: int, m: int) -> float:
    return math.sqrt((2 * band + 1) / (4 * math.pi) * math.factorial(band - m) / math.factorial(band + m))


def real_sh(d: torch.Tensor, degree: int) -> torch.Tensor:
    """(N, 3) directions in [-1, 1] -> (N, degree^2) real SH values."""
    # Contiguous coordinate rows: elementwise ops on the strided columns of d are ~30x slower.
    x, y, z = d.movedim(-1, 0).contiguous()
    cos_m, sin_m = [torch.ones_like(x)], [torch.zeros_like(x)]
    for _ in range(1, degree):
        c, s = cos_m[-1], sin_m[-1]
        cos_m.append(x * c - y * s)
        sin_m.append(x * s + y * c)
    # legendre[band][m]: P_l^m(z) / (1 - z^2)^(m/2), with the (-1)^m phase
    legendre = [[None] * degree for _ in range(degree)]
    for m in range(degree):
        legendre[m][m] = torch.full_like(z, (-1) ** m * math.prod(range(1, 2 * m, 2)))
        if m + 1 < degree:
            legendre[m + 1][m] = (2 * m + 1) * z * legendre[m][m]
        for band in range(m + 2, degree):
            legendre[band][m] = (
                (2 * band - 1) * z * legendre[band - 1][m] - (band + m - 1) * legendre[band - 2][m]
            ) / (band - m)
    out = []
    for band in range(degree):
        for m in range(-band, band + 1):
            k = _normalisation(band, abs(m))
            if m == 0:
                out.append(k * legendre[band][0])
            else:
                azimuth = cos_m[m] if m > 0 else sin_m[-m]
                out.append(math.sqrt(2.0) * k * azimuth * legendre[band][abs(m)])
    return torch.stack(out, dim=-1)


class SphericalHarmonicsSpec(EncodingSpec):
    pad_front = True  # tcnn writes this encoding's padding before its values

    def __init__(self, n_input_dims: int, config: dict):
        check_keys("SphericalHarmonics", config, {"degree"})
        if n_input_dims != 3:
            refuse_value("SphericalHarmonics", "n_input_dims", n_input_dims, "3D directions only, as in tiny-cuda-nn")
        self.degree = positive_int("SphericalHarmonics", "degree", config.get("degree", 4))
        if self.degree > MAX_DEGREE:
            refuse_value("SphericalHarmonics", "degree", self.degree, f"1 to {MAX_DEGREE}, as in tiny-cuda-nn")
        super().__init__(3, self.degree * self.degree)

    def encode(self, x, params):
        return real_sh(x * 2 - 1, self.degree)

    def hyperparams(self) -> dict:
        return {"otype": "SphericalHarmonics", "degree": self.degree}
