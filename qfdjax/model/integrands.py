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


def interior_densities(profile, r, R_c, w):
    """The four densities at radius r inside the vortex (U = A = 1), for the exact numerics' nodes."""
    R = R_c + w
    one = jnp.ones_like(R)
    a, b = flow.hill_vortex_interior(r, R, one)
    return point_densities(r, profile.delta_rho(r, R_c, w, one), profile.d_delta_rho(r, R_c, w, one), a, b,
                           2.0 / 3.0, 4.0 / 3.0)


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


# Degrees of homogeneity in (r, R) of the four densities where Delta rho is a function of r/R alone:
# r^2 times functions of r/R for the flow, deficit and stability densities; slope^2 r^2 with the slope
# of degree -1 for the gradient's.
_DENSITY_DEGREES = (2, 2, 2, 0)


def core_tangent(sums, ends, d_mid, R):
    """R_c derivatives of the core panel's Gauss sums over [lo, mid], from the sums and the densities at
    the panel's ends, for a profile whose core densities depend on r/R alone (R = R_c + w moving with R_c).

    A density f of degree m (f(s r; s R) = s^m f) has R df/dR = m f - r df/dr, and integrating r df/dr by
    parts gives d/dR_c of its integral as f(mid) d mid/dR_c + ((m + 1) I - mid f(mid) + lo f(lo)) / R.
    The core densities are polynomials the Gauss rule integrates exactly (r df/dr included), so the same
    identity holds for the sums to rounding: no tangent at the core's nodes.  `ends`: ((lo, densities at
    lo), (mid, densities at mid)); lo is fixed (r_min), mid = max(R_c, r_min) moves at d_mid.
    """
    (lo, at_lo), (mid, at_mid) = ends
    return tuple(f_mid * d_mid + ((m + 1) * total - mid * f_mid + lo * f_lo) / R
                 for total, f_lo, f_mid, m in zip(sums, at_lo, at_mid, _DENSITY_DEGREES, strict=True))


def node_axis(nodes, batch_ndim: int):
    """(t, weight) of a panel's node-table rows, the nodes on a leading axis before the batch's."""
    column = lambda k: jnp.asarray(nodes[:, k]).reshape((-1,) + (1,) * batch_ndim)  # noqa: E731
    return column(0), column(1)


def panel_jet_sums(profile, w, R_c, nodes, start, length, d_start, d_length):
    """The Gauss sums of the four densities over one panel [start, start + length] and their R_c
    derivatives, the panel's ends moving at d_start and d_start + d_length."""
    t, weight = node_axis(nodes, R_c.ndim)
    r = start + length * t
    dr = d_start + d_length * t
    delta_rho, slope, d_delta_rho, d_slope = profile.jet(r, dr, R_c, w)
    densities, d_densities = flow_densities_jet(r, dr, R_c + w, delta_rho, slope, d_delta_rho, d_slope)
    sums = tuple(jnp.sum((weight * length) * d, 0) for d in densities)
    return sums, tuple(jnp.sum(weight * (d_length * d + length * dd), 0)
                       for d, dd in zip(densities, d_densities, strict=True))
