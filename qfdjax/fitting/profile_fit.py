"""A fit with beta and/or w free: the profile minimum found directly, not read off a grid.

chi^2_min(beta, w) is the profile; its gradient is exact from the envelope
theorem (`dchi2_dbeta`, `dchi2_dw` of every fit) and its Hessian is the Schur
complement of the fit's Hessian over (beta, w) (`profile_hessian_beta_w`).  So
each outer step is a projected Newton step on the profile when that Hessian is
positive definite, a projected gradient step scaled to the bound ranges when
not, with backtracking on the refitted chi^2_min.  Bounds on beta and w are a
box: a profile that keeps falling ends on its bound, and the record says so.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, check_number, check_positive, check_range
from .fit import fit

GLOBALS = ("beta", "w")


def fit_profile(beta: float, w: float, free=("beta",), *, beta_bounds=(2.5, 4.5), w_bounds=(0.005, 0.05),
                max_iterations: int = 60, gtol: float = 1e-6, **fit_kwargs) -> dict:
    """Minimise chi^2_min over the free globals within their bounds; returns the fit record there.

    Converged (``record["free_globals"]["converged"]``) when the projected profile slope times the
    global's range is at most ``gtol`` times chi^2 for every free global; otherwise the record says
    why the search stopped ("iteration cap", "no descent") and keeps the remaining slopes.
    """
    free = tuple(free)
    if not free or any(f not in GLOBALS for f in free) or len(set(free)) != len(free):
        raise InputError(f"free = {','.join(free)} is invalid: must be beta, w or beta,w")
    beta, w = check_number("beta", beta), check_number("w", w)
    check_range("max_iterations", max_iterations, lower=1, upper=10_000, integer=True)
    check_range("gtol", gtol, lower=0.0, lower_open=True, upper=1.0)
    bounds = np.array([_pair(f"{g}_bounds", b) for g, b in zip(GLOBALS, (beta_bounds, w_bounds), strict=True)])
    for name, (lo, hi) in zip(GLOBALS, bounds, strict=True):
        check_positive(f"{name} bounds lower", lo)
        check_positive(f"{name} bounds upper", hi)
        if not hi > lo:
            raise InputError(f"{name} bounds = [{lo}, {hi}] are invalid: need lower < upper")
    z = np.array([beta, w], dtype=float)
    mask = np.array([g in free for g in GLOBALS])
    outside = mask & ((z < bounds[:, 0]) | (z > bounds[:, 1]))
    if np.any(outside):
        name = GLOBALS[int(np.argmax(outside))]
        lo, hi = bounds[int(np.argmax(outside))]
        raise InputError(f"start {name} = {float(z[int(np.argmax(outside))])!r} is outside its free bounds: must be in "
                         f"[{lo:g}, {hi:g}]")
    span = bounds[:, 1] - bounds[:, 0]
    # A global that is not free stays where it is: its box is the point itself.
    bounds = np.where(mask[:, None], bounds, z[:, None])

    def at(point):
        return fit(float(point[0]), float(point[1]), **fit_kwargs)

    record = at(z)
    history = [{"beta": float(z[0]), "w": float(z[1]), "chi2": record["chi2"]}]
    stop = "iteration cap"
    slope = _projected_slope(record, z, bounds, mask)
    for _ in range(max_iterations):
        if _stationary(slope, span, record["chi2"], gtol):
            stop = "stationary"
            break
        if not np.isfinite(record["chi2"]):
            stop = "chi2 not finite"
            break
        trial_z, trial = _descend(at, record, z, bounds, mask, span)
        if trial is None:
            stop = "no descent: the line search found no lower chi2"
            break
        z, record = trial_z, trial
        slope = _projected_slope(record, z, bounds, mask)
        history.append({"beta": float(z[0]), "w": float(z[1]), "chi2": record["chi2"]})
    sides = {}
    for name, value, (lo, hi), m in zip(GLOBALS, z, bounds, mask, strict=True):
        if m and value <= lo + 1e-12 * span.max():
            sides[name] = "lower"
        elif m and value >= hi - 1e-12 * span.max():
            sides[name] = "upper"
    converged = stop == "stationary"
    record["free_globals"] = {
        "free": list(free), "bounds": {"beta": list(beta_bounds), "w": list(w_bounds)},
        "at_bound": sides, "iterations": len(history) - 1, "history": history,
        "converged": converged, "stop": stop, "gtol": gtol,
        # dchi2_min/d(global) where it can still move (zero where a bound holds it): the stationarity
        # evidence; |slope| x range <= gtol x chi2 for every free global is the criterion.
        "projected_slope": {name: float(v) for name, v, m in zip(GLOBALS, slope, mask, strict=True) if m},
    }
    return record


def _pair(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r} is invalid: must be (lower, upper)") from None
    return check_number(f"{name} lower", lo), check_number(f"{name} upper", hi)


def _projected_slope(record: dict, z, bounds, mask) -> np.ndarray:
    """The profile's slope where the box lets the global move downhill; zero where a bound holds it."""
    g = np.array([record["dchi2_dbeta"], record["dchi2_dw"]], float)
    held = ((z <= bounds[:, 0]) & (g > 0)) | ((z >= bounds[:, 1]) & (g < 0))
    return np.where(mask & ~held, g, 0.0)


def _stationary(slope, span, chi2, gtol) -> bool:
    """Stationary when moving any free global across its whole range would change chi2 by <= gtol chi2."""
    return bool(np.all(np.isfinite(slope))) and bool(np.max(np.abs(slope) * span) <= gtol * max(abs(chi2), 1.0))


def _descend(at, record, z, bounds, mask, span, halvings: int = 30):
    """One projected descent step with backtracking: Newton on the profile where its Hessian is positive
    definite over the globals that can move, else steepest descent in range units; the first lower chi2 wins."""
    g = np.array([record["dchi2_dbeta"], record["dchi2_dw"]], float)
    H = np.array(record["identifiability"]["profile_hessian_beta_w"], float)
    movable = mask & (_projected_slope(record, z, bounds, mask) != 0.0)
    idx = np.flatnonzero(movable)
    if idx.size == 0 or not np.all(np.isfinite(g[idx])):
        return z, None
    directions = []
    Hf = H[np.ix_(idx, idx)]
    if np.all(np.isfinite(Hf)) and np.all(np.linalg.eigvalsh(Hf) > 0):
        newton = np.zeros(2)
        newton[idx] = -np.linalg.solve(Hf, g[idx])
        directions.append(newton)
    # Steepest descent in range units, first trial half a range long: a profile that keeps falling is
    # followed to its bound in a few steps (the projection stops it there).
    scaled = np.zeros(2)
    scaled[idx] = -g[idx] * span[idx]
    gradient = scaled / np.linalg.norm(scaled) * 0.5 * span
    directions.append(gradient)
    for step in directions:
        for _ in range(halvings):
            trial_z = np.clip(z + step, bounds[:, 0], bounds[:, 1])
            if np.all(trial_z == z):
                break
            trial = at(trial_z)
            if trial["chi2"] < record["chi2"]:
                return trial_z, trial
            step = step * 0.5
    return z, None
