"""Fits of the lepton parameters at fixed (beta, w, lambda), batched over points.

`solve_points` is the one compiled kernel: every (beta, w) point of a batch and
every start of every point run together under vmap.  `fit` wraps it for one
point and adds the convergence evidence a physicist needs to trust the number:
projected gradient, agreement across starts, active bounds, and the Hessian
spectrum of the free parameters (flat directions are degeneracies).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .constants import ETA_DEFAULT, lambda_from_eta
from .energy import lepton_energies
from .errors import InputError, check_range
from .likelihood import Likelihood
from .numerics import AbstractNumerics, Exact, check_numerics_name, reference_numerics
from .optimize import DEConfig, LMConfig, differential_evolution, latin_hypercube, projected_levenberg_marquardt
from .optimize.lm import projected_gradient_norm
from .params import ParameterSpace
from .profiles import AbstractProfile, BoundaryLayer
from .quadrature import SeedGridSpec
from .sharding import points_spec, shard_points

FIT_METHODS = ("gradient", "de", "de+gradient")
# Two fits agree when their chi^2 differ by at most this (the criterion).
AGREEMENT_DCHI2 = 0.1
# A fit is certified only if its projected gradient (relative to chi^2, unit box)
# is at most this: a stationary point of the bounded problem, not just a stopped
# run.  Free directions at these optima are either flat (tiny gradient) or stiff
# (Hessian eigenvalues ~1e15 in the unit box), where rounding alone leaves
# gradients of ~1e-6 chi^2 and a gradient of 1e-4 chi^2 is worth < 1e-5 in chi^2.
PROJECTED_GRADIENT_CERTIFY = 1e-4
BOUND_TOL = 1e-9


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How to fit one point.  `starts` counts gradient starts (Latin hypercube)."""

    method: str = "gradient"
    starts: int = 8
    seed: int = 0
    max_steps: int = 300
    de_maxiter: int = 1000
    de_popsize: int = 15
    de_tol: float = 0.01

    def __post_init__(self):
        if self.method not in FIT_METHODS:
            raise InputError(f"method = {self.method!r} is unknown: must be one of {', '.join(FIT_METHODS)}")
        check_range("starts", self.starts, lower=1, integer=True)
        check_range("seed", self.seed, lower=0, integer=True)
        check_range("max_steps", self.max_steps, lower=1, integer=True)
        check_range("de_maxiter", self.de_maxiter, lower=1, integer=True)
        check_range("de_popsize", self.de_popsize, lower=1, integer=True)
        check_range("de_tol", self.de_tol, lower=0.0)

    @property
    def gradient_starts(self) -> int:
        return 0 if self.method == "de" else (1 if self.method == "de+gradient" else self.starts)


class Problem(eqx.Module):
    """Residuals of the fit as a function of unit-box coordinates u."""

    space: ParameterSpace = eqx.field(static=True)
    likelihood: Likelihood
    profile: AbstractProfile

    def unpack(self, u):
        x = self.space.from_unit(u).reshape(len(self.space.leptons), 3)
        return x[:, 0], x[:, 1], x[:, 2]

    def state(self, u, beta, w, lam, numerics):
        R_c, U, A = self.unpack(u)
        E = lepton_energies(beta, w, lam, R_c, U, A, numerics=numerics, profile=self.profile)
        return self.likelihood.state(R_c, U, A, w, E)

    def residuals(self, u, beta, w, lam, numerics):
        return self.likelihood.residuals(self.state(u, beta, w, lam, numerics))

    def chi2_natural(self, x, beta, w, lam, numerics):
        """chi^2 as a function of the natural parameters (for Hessians)."""
        return jnp.sum(self.residuals(self.space.to_unit(x), beta, w, lam, numerics) ** 2)


class PointSolution(eqx.Module):
    """Per point: every start's outcome plus the best one's diagnostics."""

    u_starts: jax.Array  # (P, S, n)
    chi2_starts: jax.Array  # (P, S)
    pgrad_starts: jax.Array  # (P, S)
    steps_starts: jax.Array  # (P, S)
    done_starts: jax.Array  # (P, S)
    de_chi2: jax.Array  # (P,) nan without DE
    de_generations: jax.Array  # (P,)
    de_converged: jax.Array  # (P,)


@eqx.filter_jit
def solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                 method: str, lm: LMConfig, de: DEConfig, mesh=None) -> PointSolution:
    """Fit P points at once: starts (P, S, n) in unit coordinates, keys (P,) for DE.

    With a device mesh, points are split over its devices (see sharding.py).
    """
    return shard_points(
        lambda num, *args: _solve_points(problem, num, *args, method, lm, de), mesh, numerics,
        beta, w, lam, starts, keys)


def _solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                  method: str, lm: LMConfig, de: DEConfig) -> PointSolution:
    """The single-device body of solve_points.

    DE runs one instance per point (vmapped); the gradient refinement runs every
    (point, start) pair as one flat vmapped lane, which traces and compiles
    faster than nesting a vmap over starts inside a vmap over points.
    """
    fixed = jnp.asarray(problem.space.fixed)
    P, S, n = starts.shape
    # Every per-point input is mapped, never gathered by index: with points
    # sharded over devices, a gather would need cross-device collectives.
    axes = numerics.point_axes()

    def residual_fn(num, b, ww, l):
        return lambda u: problem.residuals(u, b, ww, l, num)

    if method in ("de", "de+gradient"):
        def one_de(num, b, ww, l, key):
            residuals = residual_fn(num, b, ww, l)
            return differential_evolution(lambda u: jnp.sum(residuals(u) ** 2), n, key, fixed, de)

        de_result = eqx.filter_vmap(one_de, in_axes=(axes, 0, 0, 0, 0))(numerics, beta, w, lam, keys)
        de_info = (de_result.chi2, de_result.generations, de_result.converged)
        if method == "de":
            def pgrad(num, b, ww, l, u, chi2):
                residuals = residual_fn(num, b, ww, l)
                g = 2.0 * jax.jacfwd(residuals)(u).T @ residuals(u)
                return projected_gradient_norm(u, g / jnp.maximum(chi2, 1e-300), fixed)

            pg = eqx.filter_vmap(pgrad, in_axes=(axes, 0, 0, 0, 0, 0))(
                numerics, beta, w, lam, de_result.u, de_result.chi2)
            return PointSolution(de_result.u[:, None], de_result.chi2[:, None], pg[:, None],
                                 de_result.generations[:, None], de_result.converged[:, None], *de_info)
        starts = starts.at[:, 0].set(de_result.u)
    else:
        de_info = (jnp.full(P, jnp.nan), jnp.zeros(P, jnp.int32), jnp.zeros(P, bool))

    def one_lane(num, b, ww, l, u0):
        return projected_levenberg_marquardt(residual_fn(num, b, ww, l), u0, fixed, lm)

    lane = lambda a: jnp.repeat(a, S, axis=0)
    lanes = eqx.filter_vmap(one_lane, in_axes=(axes, 0, 0, 0, 0))(
        numerics.repeat(S), lane(beta), lane(w), lane(lam), starts.reshape(P * S, n))
    per_point = lambda a: a.reshape((P, S) + a.shape[1:])
    return PointSolution(per_point(lanes.u), per_point(lanes.chi2), per_point(lanes.projected_gradient),
                         per_point(lanes.steps), per_point(lanes.converged), *de_info)


@eqx.filter_jit
def point_diagnostics(problem: Problem, numerics: AbstractNumerics, beta, w, lam, u_best, mesh=None):
    """S*, energies, masses, pulls and the Hessian in (parameters, beta) per point.

    The Hessian is taken with lambda following beta at fixed lambda/beta, as the
    eta calibration does; `hessian_spectra` turns it into eigenvalues and
    beta's profile curvature on the host.
    """

    def one(num, b, ww, l, u):
        state = problem.state(u, b, ww, l, num)
        pulls = problem.likelihood.residuals(state)
        x = problem.space.from_unit(u)
        lam_per_beta = l / b

        def chi2_aug(z):
            return problem.chi2_natural(z[:-1], z[-1], ww, lam_per_beta * z[-1], num)

        # Forward-over-forward: with ~10 variables it compiles faster than jax.hessian.
        hess_aug = jax.jacfwd(jax.jacfwd(chi2_aug))(jnp.concatenate([x, jnp.atleast_1d(b)]))
        at_lo = u <= BOUND_TOL
        at_hi = u >= 1.0 - BOUND_TOL
        fixed = jnp.asarray(problem.space.fixed)
        terms = problem.likelihood.terms(state)
        return dict(
            S=state.S, E_total=state.energies.total, E_circ=state.energies.E_circ,
            E_stab=state.energies.E_stab, E_grad=state.energies.E_grad,
            masses=state.S * state.energies.total, pulls=pulls, at_lower=at_lo & ~fixed,
            at_upper=at_hi & ~fixed, hessian_with_beta=hess_aug, free=~(at_lo | at_hi | fixed), **terms,
        )

    return shard_points(
        lambda num, *args: eqx.filter_vmap(one, in_axes=(num.point_axes(), 0, 0, 0, 0))(num, *args),
        mesh, numerics, beta, w, lam, u_best)


def hessian_spectra(hess_aug: np.ndarray, free: np.ndarray) -> dict:
    """Eigenvalues and beta curvature from Hessians in (parameters, beta), on the host.

    Per point: eigenvalues of the free-parameter block (flat directions are
    degeneracies) and of the block with beta added, NaN-padded to fixed length;
    the Schur complement H_bb - H_bF H_FF^+ H_Fb, the curvature of chi^2_min
    along beta, so sigma_beta = sqrt(2 / curvature).  Done in NumPy: XLA's
    batched CPU eigensolvers hung here on some inputs (jax 0.10.2), NumPy's
    LAPACK does not, and a 10 x 10 eigensolve per point is cheap anyway.
    """
    H = np.where(np.isfinite(hess_aug), hess_aug, 0.0)
    points, size = H.shape[0], H.shape[1]
    n = size - 1
    eig = np.full((points, n), np.nan)
    eig_aug = np.full((points, size), np.nan)
    curvature = np.full(points, np.nan)
    # Points share a handful of free/active patterns: one batched solve per pattern.
    patterns, which = np.unique(np.asarray(free, bool), axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == k)
        f = np.flatnonzero(pattern)
        fa = np.append(f, n)
        block = H[np.ix_(rows, f, f)]
        if f.size:
            eig[rows, : f.size] = np.linalg.eigvalsh(block)
        eig_aug[rows, : fa.size] = np.linalg.eigvalsh(H[np.ix_(rows, fa, fa)])
        coupling = H[np.ix_(rows, f, [n])][..., 0]
        if f.size:
            inverse = np.linalg.pinv(block, rcond=1e-12, hermitian=True)
            curvature[rows] = H[rows, n, n] - np.einsum("pi,pij,pj->p", coupling, inverse, coupling)
        else:
            curvature[rows] = H[rows, n, n]
    return {"hessian_eigenvalues": eig, "hessian_eigenvalues_with_beta": eig_aug, "beta_curvature": curvature,
            "hessian_finite": np.all(np.isfinite(hess_aug), axis=(1, 2))}


def make_numerics(name: str, w: np.ndarray, spec: SeedGridSpec = SeedGridSpec()):
    """Numerics for a batch of points with boundary thicknesses w."""
    if check_numerics_name(name) == "exact":
        return Exact(r_min=spec.r_min, r_max=spec.r_max)
    return reference_numerics(np.asarray(w), spec=spec)


def initial_starts(space: ParameterSpace, count: int, point_ids, seed: int):
    """Latin-hypercube starts (P, S, n) and DE keys (P,) for the given global point ids.

    Each point's randomness depends only on (seed, point id), so a scan gives
    the same answer however it is chunked, sharded or resumed.
    """
    starts, keys = _starts_for_points(jnp.asarray(point_ids), seed, max(count, 1), space.size)
    return jnp.where(jnp.asarray(space.fixed), 0.0, starts), keys


@functools.partial(jax.jit, static_argnums=(2, 3))
def _starts_for_points(point_ids, seed, count: int, dim: int):
    root = jax.random.PRNGKey(seed)
    keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(root, i)))(point_ids)
    starts = jax.vmap(lambda k: latin_hypercube(k, count, dim))(keys[:, 0])
    return starts, keys[:, 1]


def summarize_points(problem: Problem, numerics, beta, w, lam, solution: PointSolution, mesh=None) -> dict:
    """Host-side arrays of results and convergence evidence for every point."""
    chi2_s = np.asarray(solution.chi2_starts)
    finite = np.where(np.isfinite(chi2_s), chi2_s, np.inf)
    best = np.argmin(finite, axis=1)
    rows = np.arange(chi2_s.shape[0])
    u_best = np.asarray(solution.u_starts)[rows, best]
    if mesh is not None:
        u_best = jax.device_put(u_best, jax.sharding.NamedSharding(mesh, points_spec(u_best)))
    diag = jax.tree_util.tree_map(np.asarray, point_diagnostics(problem, numerics, beta, w, lam,
                                                                jnp.asarray(u_best), mesh))
    diag.update(hessian_spectra(diag.pop("hessian_with_beta"), diag.pop("free")))
    chi2 = finite[rows, best]
    within = np.sum(finite - chi2[:, None] <= AGREEMENT_DCHI2, axis=1)
    spread = np.max(np.where(np.isfinite(finite), finite, -np.inf), axis=1) - chi2
    pg = np.asarray(solution.pgrad_starts)[rows, best]
    done = np.asarray(solution.done_starts)[rows, best]
    starts = chi2_s.shape[1]
    converged = done & (pg <= PROJECTED_GRADIENT_CERTIFY) & ((within >= 2) | (starts == 1))
    params = np.asarray(problem.space.from_unit(u_best))
    return dict(
        chi2=chi2, params=params, u=np.asarray(u_best), best_start=best, chi2_starts=chi2_s,
        starts_within=within, chi2_spread=spread, projected_gradient=pg, steps=np.asarray(solution.steps_starts),
        optimizer_done=done, converged=converged, de_chi2=np.asarray(solution.de_chi2),
        de_generations=np.asarray(solution.de_generations), de_converged=np.asarray(solution.de_converged),
        **diag,
    )


def fit_points(beta, w, lam, *, numerics: str = "exact", config: FitConfig = FitConfig(),
               space: ParameterSpace | None = None, likelihood: Likelihood | None = None,
               profile: AbstractProfile = BoundaryLayer(), spec: SeedGridSpec = SeedGridSpec()) -> dict:
    """Fit many (beta, w, lam) points in one compiled call; returns host arrays."""
    beta, w, lam = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (beta, w, lam))
    space = space or ParameterSpace.seed()
    likelihood = likelihood or Likelihood.masses_only(space.leptons)
    problem = Problem(space, likelihood, profile)
    num = make_numerics(numerics, w, spec)
    starts, keys = initial_starts(space, config.gradient_starts, np.arange(len(beta)), config.seed)
    lm = LMConfig(max_steps=config.max_steps)
    de = DEConfig(popsize=config.de_popsize, maxiter=config.de_maxiter, tol=config.de_tol)
    args = tuple(jnp.asarray(v) for v in (beta, w, lam))
    solution = solve_points(problem, num, *args, starts, keys, config.method, lm, de)
    return summarize_points(problem, num, *args, solution)


def check_point(beta, w, lam):
    check_range("beta", beta)
    check_range("w", w, lower=0.0, lower_open=True)
    check_range("lam", lam, lower=0.0)


def resolve_lambda(beta, lam=None, eta=None):
    if lam is not None and eta is not None:
        raise InputError("give lam or eta, not both")
    if lam is not None:
        return lam
    eta = ETA_DEFAULT if eta is None else eta
    check_range("eta", eta, lower=0.0)
    return lambda_from_eta(np.asarray(beta, dtype=np.float64), eta)


def fit(beta: float, w: float, lam: float | None = None, *, eta: float | None = None, numerics: str = "exact",
        config: FitConfig = FitConfig(), space: ParameterSpace | None = None,
        likelihood: Likelihood | None = None, profile: AbstractProfile = BoundaryLayer(),
        spec: SeedGridSpec = SeedGridSpec(), observables: Sequence[str] = ("mass",)) -> dict:
    """Fit one (beta, w) point; returns a JSON-ready dict with convergence evidence.

    `observables` names the likelihood's terms ("mass", "g") unless `likelihood` is given.
    """
    from .observables import build_likelihood

    lam = resolve_lambda(beta, lam, eta)
    check_point(beta, w, lam)
    space = space or ParameterSpace.seed()
    if likelihood is None:
        likelihood = build_likelihood(space.leptons, observables)
    check_numerics_name(numerics)
    space.check_domain(spec.r_max, w)
    t0 = time.perf_counter()
    out = fit_points(beta, w, lam, numerics=numerics, config=config, space=space, likelihood=likelihood,
                     profile=profile, spec=spec)
    elapsed = time.perf_counter() - t0
    return point_record(out, 0, space) | {
        "beta": float(beta), "w": float(w), "lam": float(lam), "numerics": numerics,
        "observables": ["mass"] + [getattr(o, "name", type(o).__name__) for o in likelihood.extras],
        "profile": type(profile).__name__,
        "config": dataclasses.asdict(config), "bounds": space.as_dict(),
        "shared": space.shared_groups(), "timings": {"fit_s": elapsed},
    }


def point_record(out: dict, i, space: ParameterSpace) -> dict:
    """One point's results as plain Python values (JSON-ready)."""
    names = space.names
    eig = out["hessian_eigenvalues"][i]
    record = {
        "chi2": float(out["chi2"][i]),
        "params": [float(v) for v in out["params"][i]],
        "param_names": list(names),
        "S": float(out["S"][i]),
        "at_bounds": [n for n, lo, hi in zip(names, out["at_lower"][i], out["at_upper"][i]) if lo or hi],
        "bound_side": {n: ("lower" if lo else "upper") for n, lo, hi in
                       zip(names, out["at_lower"][i], out["at_upper"][i]) if lo or hi},
        "energies": {k: [float(v) for v in out[k][i]] for k in ("E_total", "E_circ", "E_stab", "E_grad")},
        "masses": [float(v) for v in out["masses"][i]],
        "pulls": [float(v) for v in out["pulls"][i]],
        "convergence": {
            "converged": bool(out["converged"][i]),
            "optimizer_done": bool(out["optimizer_done"][i]),
            "projected_gradient_rel": float(out["projected_gradient"][i]),
            "chi2_starts": [float(v) for v in out["chi2_starts"][i]],
            "chi2_spread": float(out["chi2_spread"][i]),
            "starts_within_0.1": int(out["starts_within"][i]),
            "best_start": int(out["best_start"][i]),
            "steps": [int(v) for v in out["steps"][i]],
            "hessian_eigenvalues_free": [float(v) for v in eig if np.isfinite(v)],
            "hessian_finite": bool(out["hessian_finite"][i]),
        },
        "identifiability": {
            "hessian_eigenvalues_free_and_beta": [float(v) for v in out["hessian_eigenvalues_with_beta"][i]
                                                  if np.isfinite(v)],
            "beta_profile_curvature": float(out["beta_curvature"][i]),
            "sigma_beta": (float(np.sqrt(2.0 / out["beta_curvature"][i]))
                           if out["beta_curvature"][i] > 0 else None),
        },
    }
    if "C_g" in out:
        record["C_g"] = float(out["C_g"][i])
        record["g_model"] = [float(v) for v in out["g_model"][i]]
    for key in out:
        if key.startswith("chi2_") and key not in ("chi2_starts", "chi2_spread"):
            record[key] = float(out[key][i])
    if np.isfinite(out["de_chi2"][i]):
        record["de"] = {"chi2": float(out["de_chi2"][i]), "generations": int(out["de_generations"][i]),
                        "converged": bool(out["de_converged"][i])}
    return record





def evaluate_params(params, beta, w, lam, *, numerics: str = "exact", space: ParameterSpace | None = None,
                    likelihood: Likelihood | None = None, profile: AbstractProfile = BoundaryLayer(),
                    spec: SeedGridSpec = SeedGridSpec()) -> dict:
    """chi^2, S*, energies, masses and pulls of given natural parameters at one point."""
    space = space or ParameterSpace.seed()
    space.check_inside(params, "params")
    likelihood = likelihood or Likelihood.masses_only(space.leptons)
    problem = Problem(space, likelihood, profile)
    num = make_numerics(numerics, np.asarray(w, dtype=np.float64), spec)
    state = problem.state(space.to_unit(jnp.asarray(params, dtype=jnp.float64)), beta, w, lam, num)
    pulls = likelihood.residuals(state)
    return {"chi2": float(jnp.sum(pulls**2)), "S": float(state.S), "pulls": np.asarray(pulls),
            "E_total": np.asarray(state.energies.total), "masses": np.asarray(state.S * state.energies.total),
            **{k: (float(v) if jnp.ndim(v) == 0 else np.asarray(v)) for k, v in likelihood.terms(state).items()}}
