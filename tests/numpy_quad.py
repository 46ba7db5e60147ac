"""An independent NumPy/SciPy evaluation of the exact energies by adaptive quadrature.

Each radial integral is split at R_c and R = R_c + w and integrated with
scipy.integrate.quad to ~1e-13; the angular integrals are the exact 2/3 and 4/3.
Used to check the JAX exact numerics for any density profile given as NumPy
functions.
"""

import numpy as np
from scipy.integrate import quad


def boundary_layer(r, R_c, w, A):
    """(Delta rho, d Delta rho / dr), written out by hand."""
    R = R_c + w
    q = 1 - (r / R) ** 2
    x = min(max((r - R_c) / w, 0.0), 1.0)
    taper = 1 - (6 * x**5 - 15 * x**4 + 10 * x**3)
    dtaper = -30 * x**2 * (x - 1) ** 2 / w
    if r > R:
        return 0.0, 0.0
    return -A * q**2 * taper, -A * (2 * q * (-2 * r / R**2) * taper + q**2 * dtaper)


def power(s):
    def profile(r, R_c, w, A):
        R = R_c + w
        q = max(1 - (r / R) ** 2, 0.0)
        if q == 0:
            return 0.0, 0.0
        return -A * q**s, -A * s * q ** (s - 1) * (-2 * r / R**2)
    return profile


def energies(profile, beta, w, lam, R_c, U, A, r_min=0.01, r_max=10.0):
    R = R_c + w
    k = 3 * U / R**2

    def flow(r):
        a = (k * (R**2 - r**2)) ** 2 if r < R else (U * (1 - R**3 / r**3)) ** 2
        b = (k * r**2) ** 2 if r < R else (0.5 * U * (2 + R**3 / r**3)) ** 2
        return (1 + profile(r, R_c, w, A)[0]) * r**2 * (2 * a / 3 + 4 * b / 3)

    pieces = [(r_min, R_c), (R_c, R)]
    opts = dict(epsabs=0, epsrel=1e-13, limit=200)
    circ = sum(quad(flow, a, b, **opts)[0] for a, b in pieces) + quad(flow, R, r_max, **opts)[0]
    stab = sum(quad(lambda r: profile(r, R_c, w, A)[0] ** 2 * r**2, a, b, **opts)[0] for a, b in pieces)
    grad = sum(quad(lambda r: profile(r, R_c, w, A)[1] ** 2 * r**2, a, b, **opts)[0] for a, b in pieces)
    return np.pi * circ, 4 * np.pi * beta * stab, 4 * np.pi * lam * grad
