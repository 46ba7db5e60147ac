"""The fit as a least-squares problem on the unit box.

`Problem` turns unit-box coordinates u into the likelihood's standardised
residuals at one (beta, w, lambda) point; every optimiser and diagnostic works
through it, so a new observable or profile changes nothing here.

The box (bounds, fixed mask, shared-parameter map) is held as arrays, not as
trace-time constants: a compiled kernel then serves any bounds, any fixed
values and any sharing pattern of the same parameter count, and `--bounds`
never forces a recompilation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..model.energy import lepton_energies, lepton_energies_and_derivatives
from ..model.numerics import Exact, check_numerics_name, reference_numerics
from ..model.profiles import AbstractProfile
from ..model.quadrature import SeedGridSpec
from .likelihood import Likelihood
from .params import ParameterSpace


class Box(eqx.Module):
    """x = lower + clip(u, 0, 1) * span, then shared followers copy their leader."""

    lower: Float[Array | np.ndarray, " n"]
    span: Float[Array | np.ndarray, " n"]
    fixed: Bool[Array | np.ndarray, " n"]
    leader: Int[Array | np.ndarray, " n"]

    @classmethod
    def from_space(cls, space: ParameterSpace) -> "Box":
        lo, span = space.arrays()
        return cls(lo, span, np.asarray(space.fixed), space.leader_index())

    def from_unit(self, u):
        """Natural parameters of u: traced inside kernels, NumPy on the host (no device dispatch there)."""
        xp = jnp if isinstance(u, jax.Array) else np
        return (self.lower + xp.clip(u, 0.0, 1.0) * self.span)[..., self.leader]


class Problem(eqx.Module):
    """Residuals of the fit as a function of unit-box coordinates u."""

    box: Box
    likelihood: Likelihood
    profile: AbstractProfile

    @classmethod
    def build(cls, space: ParameterSpace, likelihood: Likelihood, profile: AbstractProfile) -> "Problem":
        return cls(Box.from_space(space), likelihood, profile)

    def with_data(self, values) -> "Problem":
        """The same fit against other data (`Likelihood.with_data`): one lane of a pseudo-experiment."""
        return eqx.tree_at(lambda p: p.likelihood, self, self.likelihood.with_data(values))

    def unpack(self, u):
        x = self.box.from_unit(u).reshape(-1, 3)
        return x[:, 0], x[:, 1], x[:, 2]

    def state(self, u, beta, w, lam, numerics):
        R_c, U, A = self.unpack(u)
        E = lepton_energies(beta, w, lam, R_c, U, A, numerics=numerics, profile=self.profile)
        return self.likelihood.state(R_c, U, A, w, E)

    def residuals(self, u, beta, w, lam, numerics):
        return self.likelihood.residuals(self.state(u, beta, w, lam, numerics))

    def residuals_and_jacobian(self, u, beta, w, lam, numerics):
        """Residuals and their Jacobian in u, pushing one tangent through the quadrature instead of n.

        Each lepton's energies depend only on its own (R_c, U, A), so dE/dx is
        block diagonal, and U and A enter the energies in closed form (see
        model/types.py, UnitIntegrals): one forward-mode pass in R_c, all
        leptons at once, gives every block.  The likelihood (cheap: no
        quadrature) and the box map are differentiated in full and chained on.
        Same Jacobian as `jax.jacfwd(self.residuals)` to rounding, at a fraction
        of the cost, which is most of an LM step.
        """
        def natural(v):
            return self.box.from_unit(v).reshape(-1, 3)

        def likelihood_residuals(x, E):
            return self.likelihood.residuals(self.likelihood.state(x[:, 0], x[:, 1], x[:, 2], w, E))

        x = natural(u)
        # (leptons, 3, n), as jax.jacfwd(natural)(u) has it: clip's derivative is 1 inside the box and 1/2 on
        # its faces (lax.max/min split a tie), times each parameter's span, at its leader's column.
        on_face = (u == 0.0) | (u == 1.0)
        clip_slope = jnp.where(on_face, 0.5, jnp.where((u > 0.0) & (u < 1.0), 1.0, 0.0))
        onehot = jnp.asarray(self.box.leader).reshape(x.shape)[..., None] == jnp.arange(u.shape[0])
        dx_du = jnp.where(onehot, clip_slope * self.box.span, 0.0)
        E, by_kind = lepton_energies_and_derivatives(beta, w, lam, x[:, 0], x[:, 1], x[:, 2], numerics=numerics,
                                                     profile=self.profile)
        # d[k, l] = dE_l/dx[l, k]; chained through x(u) lepton by lepton: (leptons, n).
        chain = lambda d: jnp.einsum("kl,lkn->ln", d, dx_du)  # noqa: E731
        if not self.likelihood.extras:
            # The masses see only each lepton's total energy: one chain instead of three.
            total = chain(jnp.stack([d.total for d in by_kind]))
            return self.likelihood.mass.residuals_and_jacobian(E.total, total)
        dE_du = jax.tree_util.tree_map(lambda *d: chain(jnp.stack(d)), *by_kind)
        # One tangent per unit coordinate through the likelihood, (x, E) moving together:
        # n pushes instead of one per entry of x and of E (18) and no chain-rule products after.
        r, J = jax.vmap(lambda tx, tE: jax.jvp(likelihood_residuals, (x, E), (tx, tE)), in_axes=(-1, -1),
                        out_axes=(None, -1))(dx_du, dE_du)
        return r, J


def make_numerics(name: str, w: np.ndarray, spec: SeedGridSpec = SeedGridSpec()):
    """Numerics for a batch of points with boundary thicknesses w."""
    if check_numerics_name(name) == "exact":
        return Exact(r_min=spec.r_min, r_max=spec.r_max)
    return reference_numerics(np.asarray(w), spec=spec)
