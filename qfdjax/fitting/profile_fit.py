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

from ..errors import InputError, check_range
from .fit import fit

GLOBALS = ("beta", "w")


def fit_profile(beta: float, w: float, free=("beta",), *, beta_bounds=(2.5, 4.5), w_bounds=(0.005, 0.05),
                max_iterations: int = 40, gtol: float = 1e-6, **fit_kwargs) -> dict:
    """Minimise chi^2_min over the free globals within their bounds; returns the fit record there."""
    free = tuple(free)
    if not free or any(f not in GLOBALS for f in free) or len(set(free)) != len(free):
        raise InputError(f"free = {','.join(free)} is invalid: must be beta, w or beta,w")
    bounds = np.array([beta_bounds, w_bounds], dtype=float)
    for name, (lo, hi) in zip(GLOBALS, bounds):
        check_range(f"{name} bounds lower", lo, lower=0.0, lower_open=True)
        if not hi > lo:
            raise InputError(f"{name} bounds = [{lo}, {hi}] are invalid: need lower < upper")
    z = np.array([beta, w], dtype=float)
    mask = np.array([g in free for g in GLOBALS])
    if np.any((z < bounds[:, 0]) | (z > bounds[:, 1])):
        raise InputError(f"start (beta, w) = ({beta}, {w}) is outside the free bounds {bounds.tolist()}")
    span = bounds[:, 1] - bounds[:, 0]

    def at(point):
        return fit(float(point[0]), float(point[1]), **fit_kwargs)

    record = at(z)
    history = [{"beta": z[0], "w": z[1], "chi2": record["chi2"]}]
    for _ in range(max_iterations):
        g = np.array([record["dchi2_dbeta"], record["dchi2_dw"]])
        H = np.array(record["identifiability"]["profile_hessian_beta_w"])
        # Projected gradient in range units: zero at a bounded stationary point.
        moved = np.clip(z - g * span**2 / max(abs(record["chi2"]), 1e-300), bounds[:, 0], bounds[:, 1]) - z
        if np.max(np.abs(np.where(mask, moved, 0.0)) / span) <= gtol:
            break
        idx = np.flatnonzero(mask)
        Hf, gf = H[np.ix_(idx, idx)], g[idx]
        if np.all(np.isfinite(Hf)) and np.all(np.linalg.eigvalsh(Hf) > 0):
            step_free = -np.linalg.solve(Hf, gf)
        else:
            step_free = -gf / np.linalg.norm(gf / span[idx]) * 0.25 / np.max(1.0 / span[idx])
        step = np.zeros(2)
        step[idx] = step_free
        improved = False
        for _ in range(20):
            trial_z = np.clip(z + step, bounds[:, 0], bounds[:, 1])
            trial = at(trial_z)
            if trial["chi2"] < record["chi2"]:
                improved = True
                break
            step *= 0.5
        if not improved:
            break
        z, record = trial_z, trial
        history.append({"beta": z[0], "w": z[1], "chi2": record["chi2"]})
    sides = {}
    for name, value, (lo, hi), m in zip(GLOBALS, z, bounds, mask):
        if m and value <= lo + 1e-12 * span.max():
            sides[name] = "lower"
        elif m and value >= hi - 1e-12 * span.max():
            sides[name] = "upper"
    record["free_globals"] = {"free": list(free), "bounds": {"beta": list(beta_bounds), "w": list(w_bounds)},
                              "at_bound": sides, "iterations": len(history) - 1, "history": history}
    return record
