"""Fits of the lepton parameters at fixed (beta, w, lambda): the functions users call.

`fit` fits one point and returns a JSON-ready record with its convergence
evidence; `fit_points` fits many points in one compiled call and returns host
arrays; `evaluate_params` scores given parameters.  The compiled work lives in
kernel.py and diagnostics.py.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import (MAX_MAGNITUDE, InputError, check_globals, check_integer, check_number, check_range,
                      check_type)
from ..model.constants import ETA_DEFAULT, lambda_from_eta
from ..runtime import check_interrupted
from ..model.numerics import check_numerics_name
from ..model.profiles import AbstractProfile, BoundaryLayer
from ..model.quadrature import SeedGridSpec
from .diagnostics import prepare_diagnostics, summarize_points
from .kernel import initial_starts
from .refits import least_chi2, solve
from .likelihood import Likelihood
from .optimize import DEConfig, LMConfig
from .params import ParameterSpace
from .problem import Problem, make_numerics
from .record import point_record
from .resources import check_fit_memory
from .result import FitResult

FIT_METHODS = ("gradient", "de", "de+gradient")
# Starts, population and iteration counts past these are refused before anything is built.
MAX_STARTS = 2**53  # counts past this are not exact in float64; the memory check refuses far less
MAX_ITERATIONS = 100_000_000


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
            check_integer(name, getattr(self, name))
        if isinstance(self.de_tol, bool) or not isinstance(self.de_tol, (int, float)):
            raise InputError(f"de_tol = {self.de_tol!r} is invalid: must be a number")
        if not isinstance(self.method, str) or self.method not in FIT_METHODS:
            raise InputError(f"method = {self.method!r} is unknown: must be one of {', '.join(FIT_METHODS)}")
        # Upper limits far past any useful run, below what the compiled loops' int32/int64 counters hold.
        check_range("starts", self.starts, lower=1, upper=MAX_STARTS, integer=True)
        check_range("seed", self.seed, lower=0, upper=2**63 - 1, integer=True)
        check_range("max_steps", self.max_steps, lower=1, upper=MAX_ITERATIONS, integer=True)
        check_range("de_maxiter", self.de_maxiter, lower=1, upper=MAX_ITERATIONS, integer=True)
        check_range("de_popsize", self.de_popsize, lower=1, upper=MAX_STARTS, integer=True)
        check_range("de_tol", self.de_tol, lower=0.0, upper=MAX_MAGNITUDE)

    @property
    def gradient_starts(self) -> int:
        return 0 if self.method == "de" else (1 if self.method == "de+gradient" else self.starts)


def fit_points(beta, w, lam, *, numerics: str = "exact", config: FitConfig = FitConfig(),
               space: ParameterSpace | None = None, likelihood: Likelihood | None = None,
               profile: AbstractProfile = BoundaryLayer(), spec: SeedGridSpec = SeedGridSpec(),
               data=None, point_ids=None, extra_starts=None, pinned: Mapping[str, np.ndarray] | None = None,
               only_chi2: bool = False, warm_first: bool = False, polish: bool = True) -> dict:
    """Fit many (beta, w, lam) points in one compiled call; returns host arrays (the engine under
    `fit`, scans, toys, profiles and MINOS).

    Parameters
    ----------
    beta, w, lam : array_like
        The points, (P,) each.
    numerics, config, space, likelihood, profile, spec
        As for `fit`.

    Returns
    -------
    dict of numpy.ndarray
        Per point: chi2, params, converged, at_lower/at_upper, S, energies, slopes in beta and w,
        profile Hessian, HESSE material and the convergence evidence.

    Notes
    -----
    data (P, k): each point's own data in the likelihood's layout (`Likelihood.data()`), for
    pseudo-experiments; default the likelihood's.  point_ids: the ids that seed each point's
    Latin-hypercube starts (default 0..P-1).  extra_starts (P, n): natural parameters tried as one
    more start per point (a toy's truth, say).  pinned {name: (P,) values}: those parameters held at
    each point's own value inside their bounds -- a profile's or MINOS's refits as lanes of one call
    (the box's fixed mask is an array input, so this compiles nothing new).  only_chi2: return just
    {"chi2"}, the least LM chi^2 over the starts (infinite where none is finite), without the
    diagnostics pass and its Newton polish -- for refits whose minimum is all that is used (within the LM's
    ftol of the polished value; an exact fit's run ends once its chi^2 is below the data's rounding floor,
    `Likelihood.chi2_rounding_floor`, instead of at 1e-22..1e-19, and with extra_starts those run first:
    see refits.py).  warm_first (gradient, with extra_starts): a full fit the same way, the other starts
    run only where the extra start did not end exact (an exact fit needs no second start to certify it:
    its chi^2 cannot be undercut).  polish=False: diagnostics at the LM's point, without the Newton polish.
    """
    # Every batch of fits (a toy chunk, an FC group, a profile's refits) is a place to stop when asked.
    check_interrupted()
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
    if pinned:
        if config.method != "gradient":
            raise InputError(f"method = {config.method!r} cannot hold parameters at per-point values: use gradient")
        problem, starts = _pin(problem, space, starts, pinned, len(beta))
    lm = LMConfig(max_steps=config.max_steps)
    de = DEConfig(popsize=config.de_popsize, maxiter=config.de_maxiter, tol=config.de_tol)
    if only_chi2:
        return {"chi2": least_chi2(problem, num, beta, w, lam, starts, keys, config.method, lm, de, data=data,
                                   warm_first=extra_starts is not None)}
    prepare_diagnostics(problem, num, beta, w, lam)
    solution = solve(problem, num, beta, w, lam, starts, keys, config.method, lm, de, data,
                     warm_first=warm_first and extra_starts is not None)
    out = summarize_points(problem, num, beta, w, lam, solution, data=data, polish=polish)
    out["n_data"] = np.full(len(beta), likelihood.data_count())
    out["n_profiled"] = np.full(len(beta), likelihood.profiled_count())
    return out


def _pin(problem: Problem, space: ParameterSpace, starts: np.ndarray, pinned: Mapping[str, np.ndarray], count: int):
    """The problem with `pinned` marked fixed (bounds kept) and every start moved onto each point's values."""
    lo, span = space.arrays()
    fixed = np.asarray(problem.box.fixed).copy()
    starts = starts.copy()
    for name, values in pinned.items():
        if name not in space.names:
            raise InputError(f"pinned parameter {name!r} is unknown: parameters are {', '.join(space.names)}")
        k = space.names.index(name)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), (count,))
        if fixed[k] or span[k] <= 0:
            raise InputError(f"pinned parameter {name} is fixed or shared: it has no range to profile")
        outside = (values < lo[k]) | (values > lo[k] + span[k]) | ~np.isfinite(values)
        if outside.any():
            raise InputError(f"pinned {name} = {values[outside][0]!r} is outside its bounds "
                             f"[{lo[k]}, {lo[k] + span[k]}]")
        fixed[k] = True
        starts[..., k] = ((values - lo[k]) / span[k])[:, None]
    return eqx.tree_at(lambda p: p.box.fixed, problem, fixed), starts


def check_point(beta, w, lam):
    check_globals(beta, w, lam)


def resolve_lambda(beta, lam=None, eta=None):
    if lam is not None and eta is not None:
        raise InputError("give lam or eta, not both")
    if lam is not None:
        return lam
    eta = ETA_DEFAULT if eta is None else eta
    check_range("eta", eta, lower=0.0, upper=MAX_MAGNITUDE)
    lam = lambda_from_eta(np.asarray(beta, dtype=np.float64), eta)
    # lambda is derived: it must lie in its own domain, and the refusal names the input that set it.
    if not np.all(np.isfinite(lam)) or np.any(lam > MAX_MAGNITUDE):
        raise InputError(f"eta = {float(eta)!r} gives lam = {float(np.max(lam)):g} at beta = "
                         f"{float(np.max(beta)):g}: out of range: lam must be <= {MAX_MAGNITUDE:g}")
    return lam


def fit(beta: float, w: float, lam: float | None = None, *, eta: float | None = None, numerics: str = "exact",
        config: FitConfig = FitConfig(), space: ParameterSpace | None = None,
        likelihood: Likelihood | None = None, profile: AbstractProfile = BoundaryLayer(),
        spec: SeedGridSpec = SeedGridSpec(), observables: Sequence[str] = ("mass",), start=None) -> FitResult:
    """Fit the lepton parameters at one (beta, w), with the evidence that the fit converged.

    Parameters
    ----------
    beta, w : float
        Vacuum stiffness (> 0) and boundary-layer thickness (> 0).
    lam : float, optional
        Gradient coefficient (>= 0); default from `eta` through lambda = eta beta R_ref^2 / 11.
    eta : float, optional
        Calibration of lambda when `lam` is not given (default 0.03, the seed's).
    numerics : {"exact", "reference"}
        Converged quadrature, or the seed's grid and rules.
    config : FitConfig
        Method (gradient, de, de+gradient), starts, seed and step limits.
    space : ParameterSpace, optional
        Bounds, fixed values and shared parameters (`qfdjax.read_bounds(path)`); default the seed's.
    likelihood : Likelihood, optional
        The data terms; default built from `observables`.
    profile : AbstractProfile
        The density-deficit profile (default the boundary layer).
    spec : SeedGridSpec
        The reference numerics' grid knobs (and r_min, r_max for both numerics).
    observables : sequence of str
        Likelihood terms when `likelihood` is not given: "mass", "g", "g_tau".
    start : dict or array, optional
        Natural parameters ({name: value} over the defaults' midpoints, or a full vector) tried as
        one more start beside the Latin-hypercube ones.

    Returns
    -------
    FitResult
        Values, HESSE errors, covariance and correlation (labelled), chi^2, active bounds, bound
        costs, profile slopes in beta and w, identifiability, and `valid` (converged by every
        criterion); `minos()` and `profile()` refit from it.

    Raises
    ------
    qfdjax.errors.InputError
        A value outside its allowed range, named with the range, before any work.
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
    # Refits (minos) use this fit's own likelihood -- its data too -- and pass its lam explicitly.
    refit = dict(numerics=numerics, config=config, spec=spec, profile=profile, likelihood=likelihood)
    return FitResult(point_record(out, 0, space) | {
        "beta": float(beta), "w": float(w), "lam": float(lam), "numerics": numerics,
        "eta": None if eta is None and lam_given else (ETA_DEFAULT if eta is None else float(eta)),
        "observables": ["mass"] + [getattr(o, "name", type(o).__name__) for o in likelihood.extras],
        "profile": profile_name(profile),
        "config": dataclasses.asdict(config), "bounds": space.as_dict(),
        "shared": space.shared_groups(), "timings": {"fit_s": elapsed},
    }, context={"space": space, "refit": refit})


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


def evaluate_params(params, beta, w, lam, *, numerics: str = "exact", space: ParameterSpace | None = None,
                    likelihood: Likelihood | None = None, profile: AbstractProfile = BoundaryLayer(),
                    spec: SeedGridSpec = SeedGridSpec()) -> dict:
    """chi^2, S*, energies, masses and pulls of given natural parameters at one point (no fit).

    Parameters
    ----------
    params : array_like or dict
        Natural parameter values, in `space.names` order (or {name: value}).
    beta, w, lam : float
        The point.
    numerics, space, likelihood, profile, spec
        As for `fit`.

    Returns
    -------
    dict"""
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
