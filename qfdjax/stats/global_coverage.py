"""Each toy's own profile minimum in beta or in w: what the coverage of a beta (or w) interval needs.

A toy drawn at (beta_0, w_0) covers beta_0 with its Delta chi^2 <= L interval exactly when
chi^2_min(beta_0) - min over beta of chi^2_min(beta) <= L, with w held at w_0 and lambda following
beta (as `fit --free beta` does; for w, beta is held).  The minimum is searched for every toy at
once, as lanes of the fit kernel: a projected Newton step on each lane's profile (the slope and
curvature come exact from the fit's diagnostics), halved until the refitted chi^2 falls, within the
same bounds as `fit --free` (beta 2.5..4.5, w 0.005..0.05 unless given).  A lane is certified when its
projected slope times the bound range is at most GTOL x max(chi^2, 1), or its chi^2 is an exact fit
(<= EXACT_FIT, within that of the least chi^2 can be), and every refit converged.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

GLOBAL_NAMES = ("beta", "w")
DEFAULT_BOUNDS = {"beta": (2.5, 4.5), "w": (0.005, 0.05)}
GTOL = 1e-6
# chi^2 >= 0: a lane this close to 0 is this close to its minimum, whatever its slope's rounding says.
EXACT_FIT = 1e-12
MAX_ITERATIONS = 40
HALVINGS = 10


def profile_minimum_lanes(name: str, beta, w, eta: float, data, start_params, point_ids, fit_kwargs: dict,
                          bounds=None, start: dict | None = None) -> dict:
    """min over `name` of chi^2_min for every lane (toy), the other global held; {"chi2", "z", "converged"}.

    start: a fit of these lanes at (beta, w) already made (its chi2, params, slopes and profile Hessian).
    """
    from ..fitting.fit import fit_points
    from ..model.constants import lambda_from_eta

    if name not in GLOBAL_NAMES:
        raise InputError(f"global = {name!r} is unknown: must be beta or w")
    k = GLOBAL_NAMES.index(name)
    lo, hi = DEFAULT_BOUNDS[name] if bounds is None else bounds
    span = hi - lo
    z = np.stack([np.asarray(beta, float), np.asarray(w, float)], -1).copy()
    if np.any((z[:, k] < lo) | (z[:, k] > hi)):
        raise InputError(f"{name} = {z[0, k]:g} is outside the {name} bounds [{lo:g}, {hi:g}] of its coverage search")
    ids = np.asarray(point_ids)

    def fit_at(rows, points, params):
        return fit_points(points[:, 0], points[:, 1], lambda_from_eta(points[:, 0], eta), data=data[rows],
                          point_ids=ids[rows], extra_starts=params, **fit_kwargs)

    every = np.arange(z.shape[0])
    out = start if start is not None else fit_at(every, z, np.asarray(start_params, float))
    chi2 = np.asarray(out["chi2"], float).copy()
    params = np.asarray(out["params"], float).copy()
    slope = np.asarray(out[f"dchi2_d{name}"], float).copy()
    curvature = np.asarray(out["profile_hessian"], float)[:, k, k].copy()
    certified = np.asarray(out["converged"], bool).copy()
    stuck = np.zeros(z.shape[0], bool)

    def held_and_stationary():
        held = ((z[:, k] <= lo + 1e-12 * span) & (slope > 0)) | ((z[:, k] >= hi - 1e-12 * span) & (slope < 0))
        stationary = (np.abs(np.where(held, 0.0, slope)) * span <= GTOL * np.maximum(chi2, 1.0)) | (chi2 <= EXACT_FIT)
        return held, stationary

    for _ in range(MAX_ITERATIONS):
        _, stationary = held_and_stationary()
        active = np.flatnonzero(~stationary & ~stuck & np.isfinite(chi2))
        if active.size == 0:
            break
        # Newton where the profile curves upwards, else a tenth of the range downhill.
        step = np.where(curvature[active] > 0, -slope[active] / np.where(curvature[active] > 0, curvature[active], 1.0),
                        -np.sign(slope[active]) * 0.1 * span)
        pending = active
        for _ in range(HALVINGS):
            trial = z[pending].copy()
            trial[:, k] = np.clip(z[pending, k] + step, lo, hi)
            moved = trial[:, k] != z[pending, k]
            tried = fit_at(pending, trial, params[pending])
            better = moved & np.isfinite(tried["chi2"]) & (tried["chi2"] <= chi2[pending])
            took = pending[better]
            z[took] = trial[better]
            chi2[took] = tried["chi2"][better]
            params[took] = tried["params"][better]
            slope[took] = tried[f"dchi2_d{name}"][better]
            curvature[took] = np.asarray(tried["profile_hessian"], float)[better, k, k]
            certified[took] &= np.asarray(tried["converged"], bool)[better]
            pending, step = pending[~better & moved], step[~better & moved] / 2
            if pending.size == 0:
                break
        # No descent within the halvings: the lane's minimum is as found, judged by its slope below.
        stuck[pending] = True
    held, stationary = held_and_stationary()
    return {"chi2": chi2, "z": z, "converged": certified & stationary, "at_bound": held}


def conventions(names) -> dict[str, str]:
    """What each global's coverage measures, for the toys' record."""
    return {n: f"the toy's minimum over {n} in [{DEFAULT_BOUNDS[n][0]:g}, {DEFAULT_BOUNDS[n][1]:g}] with "
               f"{'w' if n == 'beta' else 'beta'} held at the truth (lambda following beta at fixed lambda/beta)"
            for n in names if n in GLOBAL_NAMES}
