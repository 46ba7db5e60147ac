"""The three energies of one lepton, E = E_circ - E_stab + E_grad.

    E_circ = 2 pi ∫∫ 1/2 rho v^2 r^2 sin(theta) dr dtheta
    E_stab = 4 pi beta ∫ Delta rho^2 r^2 dr
    E_grad = 4 pi lambda ∫ (dDelta rho/dr)^2 r^2 dr

All inputs broadcast against each other, so the same function evaluates one
lepton, three leptons, a population of parameter vectors or a whole (beta, w)
grid; it also jits, vmaps and differentiates in every argument.  How the
integrals are done is the `numerics` strategy's business (see model/numerics.py).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .batching import lanes_last
from .types import Energies
from .numerics import AbstractNumerics, Exact
from .profiles import AbstractProfile, BoundaryLayer


def lepton_energies(
    beta,
    w,
    lam,
    R_c,
    U,
    A,
    numerics: AbstractNumerics = Exact(),
    profile: AbstractProfile = BoundaryLayer(),
) -> Energies:
    """Energies of leptons with core R_c, layer w, speed U and depth A.

    Every argument broadcasts: pass arrays to evaluate many leptons, parameter sets or a
    whole (beta, w) grid in one call (jit and vmap apply as to any JAX function).

    Parameters
    ----------
    beta, w, lam : array_like
        Vacuum stiffness, boundary-layer thickness and gradient coefficient.
    R_c, U, A : array_like
        Core radius, vortex speed and deficit depth.
    numerics : AbstractNumerics
        `Exact()` (default; exact to rounding) or `reference_numerics(w)` (the seed's grid).
    profile : AbstractProfile
        The density-deficit profile (default the boundary layer).

    Returns
    -------
    Energies
        E_circ, E_stab, E_grad and total = E_circ - E_stab + E_grad, each shaped like the
        broadcast inputs.
    """
    return numerics.energies(profile, *_common_shape(beta, w, lam, R_c, U, A))


def lepton_energies_and_derivatives(
    beta,
    w,
    lam,
    R_c,
    U,
    A,
    numerics: AbstractNumerics = Exact(),
    profile: AbstractProfile = BoundaryLayer(),
) -> tuple[Energies, tuple[Energies, Energies, Energies]]:
    """Energies and their derivatives in (R_c, U, A), lepton by lepton (each lepton's own parameters).

    Every LM step of a fit calls this.  Vmapped over the LM's lanes with numerics that work point by
    point (`AbstractNumerics.elementwise`), it runs with the lanes on the last axis (`lanes_last`), so
    the quadrature's sums over nodes add whole rows of lanes instead of striding through (lanes, leptons)
    arrays (LM lane-step 1.07 -> 0.98 us, 2 cores: benchmarks/README.md).  That batching rule differentiates
    in forward mode only (jvp, jacfwd); for reverse mode differentiate `lepton_energies` itself."""
    args = _common_shape(beta, w, lam, R_c, U, A)
    if not numerics.elementwise:
        return numerics.energies_and_derivatives(profile, *args)
    # Arrays travel as arguments (lanes_last moves their lanes); the rest (node counts, a profile's
    # exponent) stays static, as jit keeps it.
    arrays, static = eqx.partition((numerics, profile), eqx.is_array)
    leaves, tree = jax.tree_util.tree_flatten(arrays)  # a flat list: no None leaves for jvp-of-vmap to trip on

    @lanes_last
    def jet(leaves, *args):
        numerics, profile = eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), static)
        return numerics.energies_and_derivatives(profile, *args)

    return jet(leaves, *args)


@eqx.filter_jit
def energy_table(numerics, beta, w, lam, R_c, U, A):
    """(4, n) rows E_total, E_circ, E_stab, E_grad: the energy command's compiled kernel."""
    e = lepton_energies(beta, w, lam, R_c, U, A, numerics=numerics)
    return jnp.stack([e.total, e.E_circ, e.E_stab, e.E_grad])


def _common_shape(*args):
    return jnp.broadcast_arrays(*(jnp.asarray(x, dtype=jnp.float64) for x in args))


__all__ = ["Energies", "energy_table", "lepton_energies", "lepton_energies_and_derivatives"]
