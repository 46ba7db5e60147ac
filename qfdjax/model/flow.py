"""Hill's spherical vortex as used by the model.

With v^2 = a(r) cos^2(theta) + b(r) sin^2(theta) the angular integrals are exact,
so the flow enters the energies only through the radial coefficients a and b.
"""

from __future__ import annotations

import jax.numpy as jnp


def hill_vortex_interior(r, R, U):
    """Radial coefficients (a, b) of v^2 inside the vortex (r < R).

    v_r = -(3U/R^2)(R^2 - r^2) cos(theta), v_theta = (3U/R^2) r^2 sin(theta).
    """
    k = 3.0 * U / (R * R)
    return (k * (R * R - r * r)) ** 2, (k * r * r) ** 2


def hill_vortex_exterior(r, R, U):
    """Radial coefficients (a, b) of v^2 outside the vortex (r >= R).

    v_r = U (1 - R^3/r^3) cos(theta), v_theta = -(U/2)(2 + R^3/r^3) sin(theta).
    """
    x = (R / r) ** 3
    return (U * (1.0 - x)) ** 2, (0.5 * U * (2.0 + x)) ** 2


def hill_vortex_coefficients(r, R, U):
    """(a, b) with v^2 = a cos^2(theta) + b sin^2(theta), for any r.

    v_theta jumps at r = R, which is why every quadrature breaks a panel there.
    """
    inside = r < R
    a_in, b_in = hill_vortex_interior(r, R, U)
    a_out, b_out = hill_vortex_exterior(r, R, U)
    return jnp.where(inside, a_in, a_out), jnp.where(inside, b_in, b_out)


def exterior_circulation(r_lo, r_hi, R, U):
    """E_circ of the exterior flow on [r_lo, r_hi] (rho = 1 there), in closed form.

    Outside R, r^2 (2a/3 + 4b/3) = U^2 (2 r^2 + R^6 / r^4), whose antiderivative
    is U^2 (2 r^3/3 - R^6 / (3 r^3)); E_circ = pi * that difference.
    """

    def antiderivative(r):
        return 2.0 * r**3 / 3.0 - R**6 / (3.0 * r**3)

    return jnp.pi * U**2 * (antiderivative(r_hi) - antiderivative(r_lo))
