"""Fits of the lepton parameters at fixed (beta, w, lambda): the functions users call.

`fit` fits one point and returns a JSON-ready record with its convergence
evidence; `fit_points` fits many points in one compiled call and returns host
arrays; `evaluate_params` scores given parameters.  The compiled work lives in
kernel.py and diagnostics.py.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from ..errors import InputError, check_globals, check_number, check_range, check_type
from ..model.constants import ETA_DEFAULT, lambda_from_eta
from ..model.numerics import check_numerics_name
from ..model.profiles import AbstractProfile, BoundaryLayer
from ..model.quadrature import SeedGridSpec
from .diagnostics import FLAT_RTOL, prepare_diagnostics, summarize_points
from .kernel import initial_starts, solve_points
from .likelihood import Likelihood
from .optimize import DEConfig, LMConfig
from .params import ParameterSpace
from .problem import Problem, make_numerics
from .resources import check_fit_memory
from .result import FitResult

FIT_METHODS = ("gradient", "de", "de+gradient")


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
        for name in ("starts", "seed", "max_steps", "de_maxiter", "de_popsize"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InputError(f"{name} = {value!r} is invalid: must be an integer")
        if isinstance(self.de_tol, bool) or not isinstance(self.de_tol, (int, float)):
            raise InputError(f"de_tol = {self.de_tol!r} is invalid: must be a number")
        if not isinstance(self.method, str) or self.method not in FIT_METHODS:
            raise InputError(f"method = {self.method!r} is unknown: must be one of {', '.join(FIT_METHODS)}")
        check_range("starts", self.starts, lower=1, integer=True)
        check_range("seed", self.seed, lower=0, upper=2**63 - 1, integer=True)
        check_range("max_steps", self.max_steps, lower=1, integer=True)
        check_range("de_maxiter", self.de_maxiter, lower=1, integer=True)
        check_range("de_popsize", self.de_popsize, lower=1, integer=True)
        check_range("de_tol", self.de_tol, lower=0.0)

    @property
    def gradient_starts(self) -> int:
        return 0 if self.method == "de" else (1 if self.method == "de+gradient" else self.starts)


def fit_points(beta, w, lam, *, numerics: str = "exact", config: FitConfig = FitConfig(),
               space: ParameterSpace | None = None, likelihood: Likelihood | None = None,
               profile: AbstractProfile = BoundaryLayer(), spec: SeedGridSpec = SeedGridSpec(),
               data=None, point_ids=None, extra_starts=None) -> dict:
    """Fit many (beta, w, lam) points in one compiled call; returns host arrays.

    data (P, k): each point's own data in the likelihood's layout (`Likelihood.data()`), for
    pseudo-experiments; default the likelihood's.  point_ids: the ids that seed each point's
    Latin-hypercube starts (default 0..P-1).  extra_starts (P, n): natural parameters tried as one
    more start per point (a toy's truth, say).
    """
    beta, w, lam = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (beta, w, lam))
    space = space or ParameterSpace.seed()
    check_fit_memory("fit", len(beta), max(config.gradient_starts, 1), space.size, numerics=numerics,
                     r_max=spec.r_max, method=config.method, de_popsize=config.de_popsize)
    likelihood = likelihood or Likelihood.masses_only(space.leptons)
    problem = Problem.build(space, likelihood, profile)
    num = make_numerics(numerics, w, spec)
    ids = np.arange(len(beta)) if point_ids is None else np.asarray(point_ids)
    starts, keys = initial_starts(space, config.gradient_starts, ids, config.seed)
    if extra_starts is not None:
        starts = np.concatenate([space.to_unit(np.asarray(extra_starts, float))[:, None], starts], axis=1)
    lm = LMConfig(max_steps=config.max_steps)
    de = DEConfig(popsize=config.de_popsize, maxiter=config.de_maxiter, tol=config.de_tol)
    prepare_diagnostics(problem, num, beta, w, lam)
    solution = solve_points(problem, num, beta, w, lam, starts, keys, config.method, lm, de, data=data)
    out = summarize_points(problem, num, beta, w, lam, solution, data=data)
    out["n_data"] = np.full(len(beta), likelihood.data_count())
    out["n_profiled"] = np.full(len(beta), likelihood.profiled_count())
    return out


def check_point(beta, w, lam):
    check_globals(beta, w, lam)


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
        spec: SeedGridSpec = SeedGridSpec(), observables: Sequence[str] = ("mass",), start=None) -> dict:
    """Fit one (beta, w) point; returns a JSON-ready dict with convergence evidence.

    `observables` names the likelihood's terms ("mass", "g") unless `likelihood` is given.
    `start`: natural parameters ({name: value} over the defaults' midpoints, or a full vector) tried as
    one more start beside the Latin-hypercube ones.
    """
    from .observables import build_likelihood

    beta, w = check_number("beta", beta), check_number("w", w)
    lam = None if lam is None else check_number("lam", lam)
    eta = None if eta is None else check_number("eta", eta)
    check_type("config", config, FitConfig, "a FitConfig")
    check_type("profile", profile, AbstractProfile, "a profile object (qfdjax.BoundaryLayer(), PowerProfile(s))")
    check_type("spec", spec, SeedGridSpec, "a SeedGridSpec")
    if space is not None:
        check_type("space", space, ParameterSpace, "a ParameterSpace (qfdjax.read_bounds(path) or ParameterSpace.seed())")
    if likelihood is not None:
        check_type("likelihood", likelihood, Likelihood, "a Likelihood")
    lam_given = lam is not None
    lam = resolve_lambda(beta, lam, eta)
    check_point(beta, w, lam)
    space = space or ParameterSpace.seed()
    if likelihood is None:
        likelihood = build_likelihood(space.leptons, observables)
    check_numerics_name(numerics)
    space.check_domain(spec.r_max, w)
    extra = None if start is None else _start_vector(space, start)[None]
    t0 = time.perf_counter()
    out = fit_points(beta, w, lam, numerics=numerics, config=config, space=space, likelihood=likelihood,
                     profile=profile, spec=spec, extra_starts=extra)
    elapsed = time.perf_counter() - t0
    return FitResult(point_record(out, 0, space) | {
        "beta": float(beta), "w": float(w), "lam": float(lam), "numerics": numerics,
        "eta": None if eta is None and lam_given else (ETA_DEFAULT if eta is None else float(eta)),
        "observables": ["mass"] + [getattr(o, "name", type(o).__name__) for o in likelihood.extras],
        "profile": profile_name(profile),
        "config": dataclasses.asdict(config), "bounds": space.as_dict(),
        "shared": space.shared_groups(), "timings": {"fit_s": elapsed},
    })


def _start_vector(space: ParameterSpace, start) -> np.ndarray:
    """A user's start as natural parameters inside the bounds: a dict over the box's midpoint, or a vector."""
    lo, span = space.arrays()
    if isinstance(start, dict):
        x = lo + 0.5 * span
        for name, value in start.items():
            if name not in space.names:
                raise InputError(f"start names {name!r}: parameters are {', '.join(space.names)}")
            x[space.names.index(name)] = check_number(f"start {name}", value)
    else:
        try:
            x = np.asarray(start, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(f"start = {start!r} is invalid: give {{name: value}} or {space.size} numbers") from None
    space.check_inside(x, "start")
    return x


def profile_name(profile: AbstractProfile) -> str:
    """The profile as the CLI names it (`--profile boundary`), or its class for unregistered ones."""
    from ..model.profiles import PROFILES

    for name, cls in PROFILES.items():
        if type(profile) is cls:
            return name
    return type(profile).__name__


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
            "finite_result": bool(out["finite_result"][i]),
        },
        "identifiability": {
            "hessian_eigenvalues_free_and_beta": [float(v) for v in out["hessian_eigenvalues_with_beta"][i]
                                                  if np.isfinite(v)],
            "beta_profile_curvature": float(out["beta_curvature"][i]),
            # A difference of large terms: only what exceeds its rounding uncertainty is curvature.
            "beta_profile_curvature_uncertainty": float(out["beta_curvature_uncertainty"][i]),
            "sigma_beta": (float(np.sqrt(2.0 / out["beta_curvature"][i]))
                           if out["beta_curvature"][i] > out["beta_curvature_uncertainty"][i] else None),
        },
    }
    record["bound_costs"] = bound_costs(out, i, names)
    record["dchi2_dbeta"] = float(out["dchi2_dbeta"][i])
    record["dchi2_dw"] = float(out["dchi2_dw"][i])
    record["identifiability"] |= identifiability_record(out, i, names)
    record |= hesse_errors(out["hessian"][i], ~(out["at_lower"][i] | out["at_upper"][i]), space)
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


def hesse_errors(hessian: np.ndarray, not_at_bound, space: ParameterSpace, rtol: float = FLAT_RTOL) -> dict:
    """HESSE-style errors and covariance of the free parameters: cov = 2 H^-1 (chi^2 = -2 ln L + const).

    H is the chi^2 Hessian in natural units with S* profiled, over the
    parameters that are neither fixed, shared followers, nor on a bound.  A
    singular block has no covariance: the record then names the flat
    combinations (eigenvectors with eigenvalue below `rtol` of the largest)
    and reports no errors and a null covariance, rather than numbers that
    mean nothing.  Fixed and on-bound parameters have zero rows and columns
    in a defined covariance (they do not move at this optimum).
    """
    names = space.names
    n = len(names)
    free = np.asarray(not_at_bound, bool) & ~np.asarray(space.fixed)
    idx = np.flatnonzero(free)
    covariance = np.zeros((n, n))
    # An undefined covariance is null, not zeros: a program reading zeros would see no uncertainty.
    out = {"errors": {}, "covariance": None, "hessian_singular": False, "flat_combinations": []}
    if idx.size == 0:
        return out
    # In unit-box coordinates (each parameter in its own range), as the diagnostics cut flat directions.
    _, span = space.arrays()
    unit = span[idx]
    block = np.asarray(hessian)[np.ix_(idx, idx)] * unit[:, None] * unit[None, :]
    if not np.all(np.isfinite(block)):
        out["hessian_singular"] = True
        return out
    eigval, eigvec = np.linalg.eigh(0.5 * (block + block.T))
    scale = np.max(np.abs(eigval)) if eigval.size else 0.0
    flat = eigval <= rtol * scale
    if np.any(flat):
        sub = [names[k] for k in idx]
        out["hessian_singular"] = True
        out["flat_combinations"] = [describe_direction(v / np.max(np.abs(v)), sub) for v in eigvec[:, flat].T]
        return out
    cov = 2.0 * (eigvec / eigval) @ eigvec.T * unit[:, None] * unit[None, :]
    cov = 0.5 * (cov + cov.T)  # the product is symmetric only to rounding
    covariance[np.ix_(idx, idx)] = cov
    out["covariance"] = covariance.tolist()
    out["errors"] = {names[k]: float(np.sqrt(cov[j, j])) for j, k in enumerate(idx)}
    return out


def bound_costs(out: dict, i, names) -> dict:
    """{"tau.U.upper": dchi2_min/d(bound), ...} for the bounds active at point i, in natural units."""
    costs = {}
    for side in ("lower", "upper"):
        for name, value in zip(names, out[f"bound_cost_{side}"][i]):
            if np.isfinite(value):
                costs[f"{name}.{side}"] = float(value)
    return costs


def describe_direction(weights, names, floor: float = 0.05) -> str:
    """A null-space direction as "0.71 mu.U - 0.70 tau.R_c" (unit-box weights, small ones dropped)."""
    order = np.argsort(-np.abs(weights))
    terms = [(weights[k], names[k]) for k in order if abs(weights[k]) >= floor]
    if terms and terms[0][0] < 0:
        terms = [(-v, n) for v, n in terms]
    text = " ".join(f"{'-' if v < 0 else '+'} {abs(v):.2f} {n}" for v, n in terms)
    return text.lstrip("+ ").strip()


def identifiability_record(out: dict, i, names) -> dict:
    """Counting and rank: data vs free parameters (+ profiled constants) and the Jacobian's null space."""
    n_data, n_prof = int(out["n_data"][i]), int(out["n_profiled"][i])
    n_free, rank = int(out["free_count"][i]), int(out["jacobian_rank"][i])
    null = [row for row in out["null_space"][i] if np.all(np.isfinite(row))]
    directions = [describe_direction(row, names) for row in null]
    dof = n_data - n_prof - rank
    words = (f"{n_data} data against {n_free} free parameters and {n_prof} profiled constant(s); the residual "
             f"Jacobian has rank {rank}" + (f", so {len(directions)} free direction(s) are not constrained by the "
                                            f"data: {'; '.join(directions)}" if directions else ""))
    return {"n_data": n_data, "n_free": n_free, "n_profiled": n_prof, "jacobian_rank": rank,
            "degrees_of_freedom": dof, "underdetermined": n_free + n_prof > n_data,
            "null_space": directions, "profile_hessian_beta_w": out["profile_hessian"][i].tolist(),
            "summary": words}


def evaluate_params(params, beta, w, lam, *, numerics: str = "exact", space: ParameterSpace | None = None,
                    likelihood: Likelihood | None = None, profile: AbstractProfile = BoundaryLayer(),
                    spec: SeedGridSpec = SeedGridSpec()) -> dict:
    """chi^2, S*, energies, masses and pulls of given natural parameters at one point."""
    space = space or ParameterSpace.seed()
    space.check_inside(params, "params")
    likelihood = likelihood or Likelihood.masses_only(space.leptons)
    problem = Problem.build(space, likelihood, profile)
    num = make_numerics(numerics, np.asarray(w, dtype=np.float64), spec)
    state = problem.state(jnp.asarray(space.to_unit(params)), beta, w, lam, num)
    pulls = likelihood.residuals(state)
    return {"chi2": float(jnp.sum(pulls**2)), "S": float(state.S), "pulls": np.asarray(pulls),
            "E_total": np.asarray(state.energies.total), "masses": np.asarray(state.S * state.energies.total),
            **{k: (float(v) if jnp.ndim(v) == 0 else np.asarray(v)) for k, v in likelihood.terms(state).items()}}
