"""Fits with a warm start whose other starts run only where it did not end on an exact fit.

chi^2 >= 0, so a start that ends below its data's rounding floor (`Likelihood.chi2_rounding_floor`)
has found every start's least chi^2 to within that floor: no other start can undercut it.  Such
fits run their warm start (a nearby fit's parameters) first, alone, and the other starts only for
the points it left above the floor (the certificate needs no second start for an exact fit).  Why:
Feldman-Cousins' toys on the seed's 16 x 10 scan are fitted exactly (chi^2 ~ 1e-22) from most starts,
and the eight Latin-hypercube starts of each fit took 35-40 LM steps to find what the warm start had
found in 4-9 (measured: in the refits, 80 % of the lane-steps; at the toys' own points, 30 %).
"""

from __future__ import annotations

import numpy as np

from .kernel import point_data, solve_points
from .optimize import DEConfig, LMConfig
from .problem import Problem

# The solution fields with one entry per start (the rest are per point).
PER_START = ("u_starts", "chi2_starts", "pgrad_starts", "steps_starts", "done_starts")


def least_over_starts(solution: dict) -> np.ndarray:
    """Per point, the least chi^2 of its starts (infinite where none is finite)."""
    chi2 = np.asarray(solution["chi2_starts"], float)
    return np.where(np.isfinite(chi2), chi2, np.inf).min(axis=1)


def solve_warm_first(problem: Problem, numerics, beta, w, lam, starts, keys, lm: LMConfig, de: DEConfig,
                     data=None) -> dict:
    """`solve_points` (gradient) with starts[:, 0] run first and the others only where it ended at or above
    the rounding floor; every run ends below that floor.  A start not run has chi^2 and projected gradient
    NaN, 0 steps and is not done."""
    P, S = starts.shape[:2]
    first = solve_points(problem, numerics, beta, w, lam, starts[:, :1], keys, "gradient", lm, de, data=data,
                         stop_at_rounding=True)
    floor = problem.likelihood.chi2_rounding_floor(point_data(problem, P, data))
    rest = np.flatnonzero(~(first["chi2_starts"][:, 0] < floor))
    out = dict(first, u_starts=np.array(starts, float), chi2_starts=np.full((P, S), np.nan),
               pgrad_starts=np.full((P, S), np.nan), steps_starts=np.zeros((P, S), first["steps_starts"].dtype),
               done_starts=np.zeros((P, S), bool))
    for key in PER_START:
        out[key][:, :1] = first[key]
    if rest.size and S > 1:
        others = solve_points(problem, numerics.select(rest), beta[rest], w[rest], lam[rest], starts[rest, 1:],
                              keys[rest], "gradient", lm, de, data=None if data is None else np.asarray(data)[rest],
                              stop_at_rounding=True)
        for key in PER_START:
            out[key][rest, 1:] = others[key]
    return out


def solve(problem: Problem, numerics, beta, w, lam, starts, keys, method: str, lm: LMConfig, de: DEConfig,
          data=None, warm_first: bool = False, stop_at_rounding: bool = False) -> dict:
    """`solve_points`, or `solve_warm_first` where warm_first asks for it and it applies (gradient fits with a
    start beside the warm one, starts[:, 0])."""
    if warm_first and method == "gradient" and starts.shape[1] > 1:
        return solve_warm_first(problem, numerics, beta, w, lam, starts, keys, lm, de, data)
    return solve_points(problem, numerics, beta, w, lam, starts, keys, method, lm, de, data=data,
                        stop_at_rounding=stop_at_rounding)


def least_chi2(problem: Problem, numerics, beta, w, lam, starts, keys, method: str, lm: LMConfig, de: DEConfig,
               data=None, warm_first: bool = False) -> np.ndarray:
    """The least LM chi^2 over each point's starts (P, S, n), every run ending at its data's rounding floor;
    warm_first: starts[:, 0] is a warm start (`solve`)."""
    return least_over_starts(solve(problem, numerics, beta, w, lam, starts, keys, method, lm, de, data, warm_first,
                                   stop_at_rounding=True))
