"""The radial integrands of the four unit integrals at one node, and their R_c derivatives.

Shared by every numerics: the exact Gauss panels and the seed's grid weight them differently,
but integrate the same four densities.
"""

from __future__ import annotations

import jax.numpy as jnp

from . import flow


def point_densities(r, delta_rho, slope, a, b, cos2, sin2):
    """Radial integrands of the flow (rho = 1 and deficit parts), stability and gradient integrals."""
    r2 = r * r
    flow_density = r2 * (cos2 * a + sin2 * b)
    return flow_density, delta_rho * flow_density, delta_rho * delta_rho * r2, slope * slope * r2


def flow_densities_jet(r, dr, R, delta_rho, slope, d_delta_rho, d_slope):
    """`point_densities` of the Hill interior at U = 1 and their derivatives along (dr, dR = 1).

    With q = 1 - r^2/R^2 the interior's coefficients are a = 9 q^2 and b = 9 (1 - q)^2, so
    da = 18 q dq and db = -18 (1 - q) dq.
    """
    a, b = flow.hill_vortex_interior(r, R, jnp.ones_like(R))
    inv_R2 = 1.0 / (R * R)
    q = 1.0 - r * r * inv_R2
    dq = -2.0 * r * dr * inv_R2 + 2.0 * r * r * inv_R2 / R
    r2, d_r2 = r * r, 2.0 * r * dr
    densities = point_densities(r, delta_rho, slope, a, b, 2.0 / 3.0, 4.0 / 3.0)
    flow_density = densities[0]  # r^2 (2a/3 + 4b/3)
    d_mix = 12.0 * q * dq - 24.0 * (1.0 - q) * dq
    d_flow = d_r2 * (2.0 / 3.0 * a + 4.0 / 3.0 * b) + r2 * d_mix
    d_densities = (d_flow, d_delta_rho * flow_density + delta_rho * d_flow,
                   2.0 * delta_rho * d_delta_rho * r2 + delta_rho * delta_rho * d_r2,
                   2.0 * slope * d_slope * r2 + slope * slope * d_r2)
    return densities, d_densities
