"""Density-deficit profiles of one lepton as swappable modules.

A profile maps (r, R_c, w, A) to the deficit Delta rho(r) <= 0 and its radial
derivative.  Both must broadcast over leading batch dimensions.  The exact
numerics integrate panel by panel with a fixed Gauss-Legendre rule broken at
R_c and R_c + w, so a profile must be a polynomial in r on each of those panels
(degree <= 9 for the default 11-node rule) to be integrated exactly.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp


class AbstractProfile(eqx.Module):
    """Interface of a density profile; subclasses are final."""

    # True where Delta rho on the core panel [r_min, R_c] is a function of r/R alone (R = R_c + w) and a
    # polynomial there: the exact numerics then take the core's R_c derivative from a scaling law
    # (model/integrands.py, core_tangent) instead of a tangent at every core node.
    scale_free_core: ClassVar[bool] = False

    def degrees(self) -> tuple[int, int]:
        """Polynomial degree in r of Delta rho on the core [r_min, R_c] and layer [R_c, R] panels.

        The exact numerics size their Gauss rules from it; a profile that is not
        polynomial returns the degree of a good approximation.
        """
        return (9, 9)

    @abc.abstractmethod
    def delta_rho(self, r, R_c, w, A):
        """Density deficit at radius r (<= 0 where the lepton lives).

        Must be proportional to the depth A (A is the profile's amplitude): the
        numerics integrate at A = 1 and scale (see model/types.py, UnitIntegrals).
        """

    @abc.abstractmethod
    def d_delta_rho(self, r, R_c, w, A):
        """Analytic d(Delta rho)/dr, used by the exact numerics."""

    def jet(self, r, dr, R_c, w):
        """(Delta rho, its slope, and both's derivatives as r moves by dr while R_c moves by 1), at A = 1.

        The exact numerics' R_c tangent (a fit's Jacobian) calls it at every node; this default
        is forward mode, and a profile may write it out (see BoundaryLayer).
        """
        one = jnp.ones_like(r)
        (rho, slope), (d_rho, d_slope) = jax.jvp(
            lambda r_, R_c_: (self.delta_rho(r_, R_c_, w, one), self.d_delta_rho(r_, R_c_, w, one)),
            (r, R_c), (dr, jnp.ones_like(R_c)))
        return rho, slope, d_rho, d_slope


def smoothstep5(x):
    """Quintic smoothstep S(x) = 6x^5 - 15x^4 + 10x^3 (C2 at both ends)."""
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def smoothstep5_slope(x):
    """S'(x) = 30 x^2 (x - 1)^2."""
    return 30.0 * x * x * (x - 1.0) ** 2


def smoothstep5_curvature(x):
    """S''(x) = 60 x (x - 1) (2x - 1)."""
    return 60.0 * x * (x - 1.0) * (2.0 * x - 1.0)


class BoundaryLayer(AbstractProfile):
    """The seed's boundary-layer profile.

    Delta rho = -A (1 - (r/R)^2)^2 T(r),  R = R_c + w, with T = 1 inside R_c,
    1 - S((r - R_c)/w) across the layer, and 0 beyond R.  Inside each panel it
    is a polynomial of degree 4 (core) or 9 (layer).
    """

    # The taper is exactly 1 inside R_c, leaving -(1 - r^2/R^2)^2.
    scale_free_core: ClassVar[bool] = True

    def degrees(self):
        return (4, 9)

    def _parts(self, r, R_c, w):
        # Reciprocals are written once so XLA shares them across quadrature
        # nodes instead of dividing at every node.
        inv_R2 = 1.0 / ((R_c + w) * (R_c + w))
        inv_w = 1.0 / w
        q = 1.0 - r * r * inv_R2
        x = jnp.clip((r - R_c) * inv_w, 0.0, 1.0)
        # Clipping x makes the taper exactly 1 in the core and exactly 0 past R
        # (S(1) = 1 in floating point), so no branch is needed.
        taper = 1.0 - smoothstep5(x)
        return inv_R2, inv_w, q, x, taper

    def delta_rho(self, r, R_c, w, A):
        _, _, q, _, taper = self._parts(r, R_c, w)
        return -A * q * q * taper

    def d_delta_rho(self, r, R_c, w, A):
        inv_R2, inv_w, q, x, taper = self._parts(r, R_c, w)
        dq = -2.0 * r * inv_R2
        # S' vanishes at both ends of the clipped x, so the slope of the taper
        # is zero in the core and past R without a branch.
        dtaper = -smoothstep5_slope(x) * inv_w
        return -A * q * (2.0 * dq * taper + q * dtaper)

    def jet(self, r, dr, R_c, w):
        # With R = R_c + w moving by 1: q_r = -2r/R^2, dq = q_r dr + 2 r^2/R^3, x = (r - R_c)/w moves by
        # (dr - 1)/w.  S' and S'' vanish at both ends of the clipped x, so clipping needs no branch here.
        inv_R2, inv_w, q, x, taper = self._parts(r, R_c, w)
        inv_R3 = inv_R2 / (R_c + w)
        q_r = -2.0 * r * inv_R2
        dq = q_r * dr + 2.0 * r * r * inv_R3
        dq_r = -2.0 * dr * inv_R2 + 4.0 * r * inv_R3
        dx = (dr - 1.0) * inv_w
        taper_r = -smoothstep5_slope(x) * inv_w
        d_taper = taper_r * (dr - 1.0)
        d_taper_r = -smoothstep5_curvature(x) * inv_w * dx
        rho = -q * q * taper
        slope = -q * (2.0 * q_r * taper + q * taper_r)
        d_rho = -(2.0 * q * dq * taper + q * q * d_taper)
        d_slope = -(dq * (2.0 * q_r * taper + q * taper_r)
                    + q * (2.0 * dq_r * taper + 2.0 * q_r * d_taper + dq * taper_r + q * d_taper_r))
        return rho, slope, d_rho, d_slope


class PowerProfile(AbstractProfile):
    """Delta rho = -A (1 - (r/R)^2)^s for r <= R = R_c + w, zero outside.

    A smooth-edged family with one global shape exponent s (default 2).  For
    integer s it is a polynomial of degree 2s and the exact numerics size their
    panels to integrate it exactly; other s are integrated to a high order.
    """

    s: float = 2.0

    def degrees(self):
        d = 2 * math.ceil(self.s) + (0 if float(self.s).is_integer() else 6)
        return (d, d)

    def _q(self, r, R_c, w):
        inv_R2 = 1.0 / ((R_c + w) * (R_c + w))
        return inv_R2, jnp.maximum(1.0 - r * r * inv_R2, 0.0)

    def delta_rho(self, r, R_c, w, A):
        _, q = self._q(r, R_c, w)
        return -A * q**self.s

    def d_delta_rho(self, r, R_c, w, A):
        inv_R2, q = self._q(r, R_c, w)
        # Past R (q = 0) the slope is zero; feeding q = 1 to the power there keeps
        # s < 1 from producing inf (and NaN gradients through the where).
        q_pow = jnp.where(q > 0, jnp.where(q > 0, q, 1.0) ** (self.s - 1.0), 0.0)
        return -A * self.s * q_pow * (-2.0 * r * inv_R2)


PROFILES = {"boundary": BoundaryLayer, "power": PowerProfile}
"""Density profiles by the name `--profile` and `make_profile` accept.

A new profile (an `AbstractProfile` subclass) becomes selectable once it is added here:
`PROFILES["name"] = MyProfile`.
"""


# The exact numerics size their panels to the profile's polynomial degree 2s: past s = 100 the node
# count (and the compile) grows without bound, and the deficit is a spike no fit could use.
MAX_POWER_S = 100.0


def make_profile(name: str = "boundary", s: float = 2.0) -> AbstractProfile:
    from ..errors import InputError, check_range

    if not isinstance(name, str) or name not in PROFILES:
        raise InputError(f"profile = {name!r} is unknown: must be one of {', '.join(PROFILES)}")
    if name == "power":
        check_range("power_s", s, lower=0.0, lower_open=True, upper=MAX_POWER_S)
        return PowerProfile(float(s))
    # Any other registered family is built with its defaults.
    return PROFILES[name]()
