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

    def __repr__(self) -> str:
        # The numbers, not equinox's shapes: print(qfdjax.lepton_energies(...)) is read by people.
        import numpy as np

        try:
            parts = {k: np.asarray(v) for k, v in (("E_total", self.total), ("E_circ", self.E_circ),
                                                    ("E_stab", self.E_stab), ("E_grad", self.E_grad))}
        except Exception:  # noqa: BLE001 - inside a trace there are no numbers to show
            return super().__repr__()
        with np.printoptions(precision=10, threshold=20):
            return "Energies(" + ", ".join(f"{k}={v}" for k, v in parts.items()) + ")"


class UnitIntegrals(eqx.Module):
    """A lepton's energy integrals at unit speed U and unit depth A.

    The Hill vortex's velocity is proportional to U and every profile's deficit
    Delta rho to A, so with rho = 1 + Delta rho

        E_circ = U^2 (circ + A circ_deficit),  E_stab = beta A^2 stab,  E_grad = lam A^2 grad,

    where the four integrals depend only on (R_c, w).  This is what lets a fit's
    Jacobian push one forward-mode tangent (R_c) through the quadrature instead
    of three: the U and A derivatives are closed forms.
    """

    circ: Float[Array, "..."]  # pi ∫ r^2 (2a/3 + 4b/3) dr at U = 1, rho = 1, exterior included
    circ_deficit: Float[Array, "..."]  # pi ∫ Delta rho r^2 (2a/3 + 4b/3) dr at U = A = 1
    stab: Float[Array, "..."]  # 4 pi ∫ Delta rho^2 r^2 dr at A = 1
    grad: Float[Array, "..."]  # 4 pi ∫ (dDelta rho/dr)^2 r^2 dr at A = 1

    def energies(self, beta, lam, U, A) -> Energies:
        return Energies(U * U * (self.circ + A * self.circ_deficit), beta * A * A * self.stab,
                        lam * A * A * self.grad)

    def derivatives(self, beta, lam, U, A) -> tuple[Energies, Energies]:
        """(dE/dU, dE/dA), in closed form."""
        zero = jnp.zeros_like(self.stab)
        d_U = Energies(2.0 * U * (self.circ + A * self.circ_deficit), zero, zero)
        d_A = Energies(U * U * self.circ_deficit, 2.0 * beta * A * self.stab, 2.0 * lam * A * self.grad)
        return d_U, d_A


def unit_integrals(flow_integral, deficit_flow_integral, stab_integral, grad_integral, exterior=0.0) -> UnitIntegrals:
    """Apply the model's prefactors to the radial integrals (all at U = A = 1).

    flow integrals are ∫ r^2 (∫ v^2 sin dtheta) dr, so E_circ = 2 pi * 1/2 * them.
    """
    four_pi = 4.0 * jnp.pi
    return UnitIntegrals(jnp.pi * flow_integral + exterior, jnp.pi * deficit_flow_integral,
                         four_pi * stab_integral, four_pi * grad_integral)
