"""The posterior's log density on the real line, built from the fit's own `Problem`.

Each sampled coordinate is a free lepton parameter (fixed values and shared followers are not
sampled; a follower copies its leader as in every fit) or a free global (beta, w), mapped from
its box to the real line by a logit: x = lower + span * sigmoid(z).  The density in z is

    log p(z) = -(chi²_min(S*) + log Σ E²/σ² [+ each observable's log curvature]) / 2
               + Σ log prior(x) + Σ log |dx/dz|,

the likelihood with S (and the g term's C_g) integrated out under flat priors -- it is Gaussian
in each of them, so the integral is exact up to a constant (`Likelihood.marginal_chi2`).

Chains run in whitened coordinates y, z = mode + L y, where L is the Laplace approximation's
Cholesky-like factor at the density's mode: the degenerate electron parameters' directions and
the narrow mass-constrained ones then have comparable scales, which is what one step size and
one trajectory length for every chain need.  Directions the data do not constrain keep at most
the logistic prior's width (variance pi²/3 in z).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..fitting.likelihood import Likelihood
from ..fitting.params import ParameterSpace
from ..fitting.problem import Problem
from ..model.constants import lambda_from_eta
from ..model.numerics import Exact
from ..model.profiles import AbstractProfile, BoundaryLayer
from ..model.quadrature import SeedGridSpec
from .priors import Prior, prior_arrays

GLOBALS = ("beta", "w")
# Precision floor in z: a direction the data leave free keeps the logistic distribution's variance pi²/3.
PRECISION_FLOOR = 3.0 / np.pi**2


class Posterior(eqx.Module):
    """log p(z) of the sampled coordinates (free lepton parameters, then free globals)."""

    problem: Problem
    numerics: Exact
    free: np.ndarray  # indices of the sampled lepton parameters in the space's order
    base_u: np.ndarray  # unit coordinates of every lepton parameter (fixed ones are never read)
    lower: np.ndarray
    span: np.ndarray
    prior_kind: np.ndarray
    prior_mean: np.ndarray
    prior_sd: np.ndarray
    point: np.ndarray  # (beta, w) where not sampled
    eta: float
    global_slots: tuple[int, int] = eqx.field(static=True)  # position of beta, w in z, -1 if fixed

    @property
    def size(self) -> int:
        return int(np.size(self.lower))

    def natural(self, z):
        return self.lower + self.span * jax.nn.sigmoid(z)

    def state(self, z):
        x = self.natural(z)
        u = jnp.asarray(self.base_u).at[self.free].set(jax.nn.sigmoid(z[: len(self.free)]))
        beta, w = (x[s] if s >= 0 else self.point[i] for i, s in enumerate(self.global_slots))
        lam = lambda_from_eta(beta, self.eta)
        return self.problem.state(u, beta, w, lam, self.numerics)

    def log_density(self, z):
        x = self.natural(z)
        log_like = -0.5 * self.problem.likelihood.marginal_chi2(self.state(z))
        log_jacobian = jnp.sum(jnp.log(self.span) + jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z))
        normal = -0.5 * ((x - self.prior_mean) / self.prior_sd) ** 2
        log_prior = jnp.sum(jnp.where(self.prior_kind == 1, normal,
                                      jnp.where(self.prior_kind == 2, -jnp.log(x), 0.0)))
        return log_like + log_jacobian + log_prior

    def chi2_and_scale(self, z):
        state = self.state(z)
        return jnp.sum(self.problem.likelihood.residuals(state) ** 2), state.S

    def with_data(self, values) -> "Posterior":
        return eqx.tree_at(lambda p: p.problem, self, self.problem.with_data(values))


def sampled_names(space: ParameterSpace, free_globals=()) -> list[str]:
    return [n for n, f in zip(space.names, space.fixed, strict=True) if not f] + [g for g in GLOBALS
                                                                                  if g in free_globals]


def build_posterior(space: ParameterSpace, likelihood: Likelihood, beta: float, w: float, *, eta: float,
                    priors: dict[str, Prior], free_globals=(), beta_bounds=(2.5, 4.5), w_bounds=(0.005, 0.05),
                    profile: AbstractProfile = BoundaryLayer(), spec: SeedGridSpec = SeedGridSpec()) -> Posterior:
    """The posterior for this space and likelihood at (beta, w), or with beta and/or w sampled in their bounds."""
    free_globals = tuple(free_globals)
    if any(g not in GLOBALS for g in free_globals) or len(set(free_globals)) != len(free_globals):
        raise InputError(f"free = {','.join(free_globals)} is invalid: must be beta, w or beta,w")
    free = np.flatnonzero(~space.fixed)
    names = sampled_names(space, free_globals)
    if not names:
        raise InputError("nothing to sample: every parameter is fixed or shared and no global is free")
    lo, span = space.arrays()
    glo = {"beta": beta_bounds, "w": w_bounds}
    for g, value in zip(GLOBALS, (beta, w), strict=True):
        if g in free_globals and not glo[g][0] <= value <= glo[g][1]:
            raise InputError(f"start {g} = {value!r} is outside its free bounds [{glo[g][0]}, {glo[g][1]}]")
    lower = np.concatenate([lo[free], [glo[g][0] for g in free_globals]])
    spans = np.concatenate([span[free], [glo[g][1] - glo[g][0] for g in free_globals]])
    if not np.all(spans > 0):
        raise InputError(f"bounds of {names[int(np.argmin(spans))]} are empty: a sampled parameter needs lower < upper")
    space.check_domain(spec.r_max, float(w_bounds[1] if "w" in free_globals else w))
    beta_slot, w_slot = (len(free) + free_globals.index(g) if g in free_globals else -1 for g in GLOBALS)
    kind, mean, sd = prior_arrays(priors, names)
    return Posterior(Problem.build(space, likelihood, profile), Exact(r_min=spec.r_min, r_max=spec.r_max),
                     free, np.full(space.size, 0.5), lower, spans, kind, mean, sd,
                     np.array([beta, w], dtype=np.float64), float(eta), (beta_slot, w_slot))


def unconstrained(posterior: Posterior, x) -> np.ndarray:
    """z of natural values x, nudged inside the box (a best fit on a bound has z = ±inf)."""
    u = (np.asarray(x, float) - posterior.lower) / posterior.span
    u = np.clip(u, 1e-6, 1 - 1e-6)
    return np.log(u) - np.log1p(-u)


@eqx.filter_jit
def find_mode(posterior: Posterior, z0, iterations: int = 200):
    """The maximum of log p(z) by Levenberg-damped Newton steps (the dimension is at most 11)."""
    f = posterior.log_density
    grad, hess = jax.grad(f), jax.hessian(f)
    eye = jnp.eye(z0.shape[0])

    def step(carry, _):
        z, value, damping = carry
        h = -hess(z)
        h = 0.5 * (h + h.T)
        trial = z + jnp.linalg.solve(h + damping * (1.0 + jnp.abs(jnp.diag(h))) * eye, grad(z))
        trial_value = f(trial)
        better = jnp.isfinite(trial_value) & (trial_value >= value)
        return (jnp.where(better, trial, z), jnp.where(better, trial_value, value),
                jnp.where(better, damping * 0.3, damping * 10.0)), None

    (z, value, _), _ = jax.lax.scan(step, (z0, f(z0), jnp.asarray(1e-3)), None, length=iterations)
    return z, value, -hess(z), grad(z)


def converged_mode(posterior: Posterior, z0, rounds: int = 20, tolerance: float = 1e-6):
    """`find_mode` repeated until the Newton decrement gᵀH⁻¹g/2 (the log density still to gain) is below
    `tolerance`, or `rounds` are spent; returns (z, log p, -Hessian, decrement, converged)."""
    z = z0
    for _ in range(rounds):
        z, value, neg_hessian, gradient = find_mode(posterior, z)
        h, g = np.asarray(neg_hessian), np.asarray(gradient)
        values, vectors = np.linalg.eigh(0.5 * (h + h.T))
        projected = vectors.T @ g
        decrement = float(0.5 * np.sum(projected**2 / np.maximum(values, PRECISION_FLOOR)))
        if decrement < tolerance:
            return z, float(value), h, decrement, True
    return z, float(value), h, decrement, False


def whitening(neg_hessian: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = the Laplace covariance, every precision at least PRECISION_FLOOR."""
    h = 0.5 * (neg_hessian + neg_hessian.T)
    values, vectors = np.linalg.eigh(h)
    values = np.maximum(values, PRECISION_FLOOR)
    return vectors / np.sqrt(values)
