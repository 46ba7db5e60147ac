"""Expected precision without toys: Asimov data and the Fisher matrix, for sigma_beta per observable set.

Asimov data are the model's own prediction at a truth, without fluctuation: fitted
at the truth they give chi^2 = 0, every residual vanishes, and the chi^2 Hessian is
exactly 2 J^T J -- the Fisher information.  beta's Fisher error follows with the
lepton parameters profiled by the Schur complement over the free ones (parameters
on an active bound are held there: a bound is a constraint, not information), as
the fit diagnostics already compute it (`sigma_beta`); with w profiled too, from the
2 x 2 profile Hessian in (beta, w).  The Asimov profile itself -- chi^2_min(beta) of
the Asimov data, refitted at each beta -- gives the same error where it is
quadratic, and its Delta chi^2 = 1 crossings where it is not; `sigma_beta_asimov`
is half their distance.  Different sigmas per observable answer "how well would
this observable have to be known to pin beta?".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import InputError
from ..fitting.fit import FitConfig, check_point, fit, fit_points, resolve_lambda
from ..fitting.roots import Crossings
from ..model.constants import lambda_from_eta

# Crossing search on the Asimov profile: bracket outwards from the Fisher error (at most EXPAND_STEPS
# trials), then Illinois regula falsi (at most CROSSING_ROUNDS more).
EXPAND_STEPS = 8
CROSSING_ROUNDS = 30
CROSSING_TOL = 1e-4


def forecast(beta: float, w: float, *, observables=("mass",), sigmas: dict | None = None, space=None,
             eta: float | None = None, numerics: str = "exact", config: FitConfig = FitConfig(),
             truth_fit: dict | None = None) -> dict:
    """Expected sigma_beta at (beta, w) for a set of observables, without toys.

    The truth is the best fit to the real data at (beta, w) with these observables at their usual
    sigmas (or `truth_fit`); the Asimov data are its prediction. sigma_beta comes from the Fisher
    matrix (lepton parameters profiled by the Schur complement, active bounds held; w fixed and w
    profiled) and from the refitted Asimov profile's Delta chi^2 = 1 crossings.

    Parameters
    ----------
    beta, w : float
        The point.
    observables : sequence of str
        "mass", "g", "g_tau".
    sigmas : dict, optional
        Overrides of the observables' sigmas, e.g. {"g_tau": 1e-6}.
    space : ParameterSpace, optional
        Bounds (default the seed's).
    eta : float, optional
        lambda's calibration (default 0.03).
    numerics : {"exact", "reference"}
    config : FitConfig
    truth_fit : dict, optional
        A fit record to use as the truth instead of fitting the real data.

    Returns
    -------
    dict
        The F.json record: sigma_beta (Fisher), sigma_beta_w_profiled, sigma_beta_asimov and the
        Asimov profile's crossings, with the truth and the configuration.
    """
    from ..fitting.observables import build_likelihood
    from ..fitting.params import ParameterSpace
    from .toys import prediction_at

    space = space or ParameterSpace.seed()
    lam = resolve_lambda(beta, None, eta)
    check_point(beta, w, lam)
    likelihood = build_likelihood(space.leptons, observables, sigmas=sigmas)
    eta_value = 0.03 if eta is None else float(eta)
    truth = truth_fit or fit(beta, w, eta=eta, numerics=numerics, config=config, space=space,
                             observables=observables)
    params = np.asarray(truth["params"], float)
    plain = build_likelihood(space.leptons, observables)
    asimov = prediction_at(params, beta, w, lam, numerics, space, plain)
    asimov_likelihood = likelihood.with_data(asimov)
    at = fit(beta, w, eta=eta, numerics=numerics, config=config, space=space, likelihood=asimov_likelihood,
             start=params)
    ident = at["identifiability"]
    curvature = ident["beta_profile_curvature"]
    uncertainty = ident["beta_profile_curvature_uncertainty"]
    sigma_fisher = ident["sigma_beta"]
    H = np.asarray(ident["profile_hessian_beta_w"], float)
    schur = H[0, 0] - (H[0, 1] ** 2 / H[1, 1] if H[1, 1] > 0 else 0.0)
    sigma_fisher_w = math.sqrt(2.0 / schur) if schur > uncertainty else None

    def profile(betas):
        betas = np.asarray(betas, float)
        out = fit_points(betas, np.full(betas.size, w), lambda_from_eta(betas, eta_value), numerics=numerics,
                         config=config, space=space, likelihood=likelihood,
                         data=np.repeat(asimov[None], betas.size, axis=0),
                         extra_starts=np.repeat(params[None], betas.size, axis=0))
        return out["chi2"] - at["chi2"], out["dchi2_dbeta"], out["converged"]

    ends, crossing_ok = _asimov_crossings(profile, beta, sigma_fisher)
    # Half the interval only where both ends were found by certified fits; else each side stands alone.
    sigma_asimov = 0.5 * (ends[1] - ends[0]) if None not in ends and all(crossing_ok) else None
    record = {
        "beta": float(beta), "w": float(w), "lam": float(lam), "eta": eta_value, "numerics": numerics,
        "observables": list(observables),
        "sigmas": {"mass": float(likelihood.mass.sigma_model),
                   # Every extra observable is a g term, with its own sigma.
                   **{getattr(o, "name", type(o).__name__): float(o.sigma_g)  # type: ignore[attr-defined]
                      for o in likelihood.extras}},
        "truth": dict(zip(space.names, params.tolist(), strict=True)), "truth_chi2_real_data": float(truth["chi2"]),
        "asimov_data": dict(zip(likelihood.data_names(space.leptons), asimov.tolist(), strict=True)),
        "asimov_chi2_at_truth": float(at["chi2"]), "asimov_fit_valid": bool(at.valid),
        "free_at_truth": [n for n, f in zip(space.names, space.fixed, strict=True) if not f and n not in at["at_bounds"]],
        "active_bounds": at["bound_side"],
        "sigma_beta": sigma_fisher, "sigma_beta_relative": None if sigma_fisher is None else sigma_fisher / beta,
        "beta_curvature": curvature, "beta_curvature_uncertainty": uncertainty,
        "sigma_beta_w_profiled": sigma_fisher_w,
        "sigma_beta_asimov": sigma_asimov, "asimov_interval": list(ends), "asimov_converged": crossing_ok,
        # Each side's distance from the truth: equal to sigma_beta where the profile is quadratic.
        "asimov_distances": [None if e is None else abs(e - beta) for e in ends],
        "config": {"fit": dataclasses.asdict(config), "bounds": space.as_dict(), "shared": space.shared_groups()},
        "method": ("Fisher: 2/curvature of chi^2_min(beta) on Asimov data (lepton parameters profiled by the Schur "
                   "complement, active bounds held); Asimov: Delta chi^2 = 1 crossings of the refitted Asimov "
                   "profile at fixed w"),
    }
    return record


def _asimov_crossings(profile, beta0: float, sigma_guess: float | None):
    """(lower, upper) beta where the Asimov profile reaches Delta chi^2 = 1, the open sides' trials in one
    batch each round (`roots.Crossings`: doubling outwards from the Fisher error, then Illinois), and per
    side whether it converged (|Delta chi^2 - 1| <= CROSSING_TOL at a certified fit)."""
    step = sigma_guess if sigma_guess else 0.01 * beta0
    sides = Crossings.outward(beta0, -1.0, [-1.0, 1.0], [1e-6, np.inf], step)
    certified = np.zeros(2, bool)
    while sides.open.size:
        which = sides.open
        trial = sides.trials(which)
        values, _, converged = profile(trial)
        sides.record(which, trial, np.asarray(values, float) - 1.0, ftol=CROSSING_TOL,
                     max_evaluations=EXPAND_STEPS + CROSSING_ROUNDS, max_outward=EXPAND_STEPS)
        certified[which] = np.asarray(converged, bool)
    # A side whose profile never reaches Delta chi^2 = 1 within 2^EXPAND_STEPS Fisher errors is open (None).
    found = np.isfinite(sides.b) & ~sides.failed
    settled = sides.hit | sides.narrow
    ends = [float(sides.x[k]) if found[k] else None for k in (0, 1)]
    return ends, [bool(found[k] and settled[k] and certified[k]) for k in (0, 1)]


def check_sigmas(pairs) -> dict:
    """`--sigma g_tau=1e-6` pairs as {term: value}, refused with one line when malformed."""
    out = {}
    for text in pairs or []:
        name, sep, value = str(text).partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"sigma = {text!r} is invalid: give TERM=VALUE, e.g. g_tau=1e-6") from None
        if not sep:
            raise InputError(f"sigma = {text!r} is invalid: give TERM=VALUE, e.g. g_tau=1e-6")
    return out
