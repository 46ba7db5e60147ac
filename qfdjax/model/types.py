"""Small result containers shared across modules."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

# Every JAX computation of the model passes through this module's types, so
# float64 is asserted here as well as in `qfdjax/__init__` (someone may have
# switched it off after importing qfdjax).
jax.config.update("jax_enable_x64", True)


class Energies(eqx.Module):
    """E_circ, E_stab, E_grad of a batch of leptons; `total` = E_circ - E_stab + E_grad."""

    E_circ: Float[Array, "..."]
    E_stab: Float[Array, "..."]
    E_grad: Float[Array, "..."]

    @property
    def total(self):
        return self.E_circ - self.E_stab + self.E_grad


def assemble_energies(beta, lam, flow_integral, stab_integral, grad_integral, exterior=0.0) -> Energies:
    """Apply the model's prefactors to the three radial integrals.

    flow_integral is ∫ rho r^2 (∫ v^2 sin dtheta) dr, so E_circ = 2 pi * 1/2 * it.
    """
    four_pi = 4.0 * jnp.pi
    return Energies(
        jnp.pi * flow_integral + exterior,
        four_pi * beta * stab_integral,
        four_pi * lam * grad_integral,
    )
