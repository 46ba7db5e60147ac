"""Refits whose least chi^2 over their starts is all that is used (Feldman-Cousins' toys).

chi^2 >= 0, so a start that ends below its data's rounding floor (`Likelihood.chi2_rounding_floor`)
has found every start's least chi^2 to within that floor, and the other starts cannot change the
answer.  Such refits run their warm start (a nearby fit's parameters) first, alone, and the other
starts only for the points it left above the floor.  Why: on the seed's 16 x 10 scan, Feldman-Cousins'
toys are fitted exactly (chi^2 ~ 1e-22) from most starts, and the eight Latin-hypercube starts of
each refit took 35-40 LM steps to find what the warm start had found in 5-9 (measured).
"""

from __future__ import annotations

import numpy as np

from .kernel import point_data, solve_points
from .optimize import DEConfig, LMConfig
from .problem import Problem


def least_over_starts(solution: dict) -> np.ndarray:
    """Per point, the least chi^2 of its starts (infinite where none is finite)."""
    chi2 = np.asarray(solution["chi2_starts"], float)
    return np.where(np.isfinite(chi2), chi2, np.inf).min(axis=1)


def least_chi2(problem: Problem, numerics, beta, w, lam, starts, keys, method: str, lm: LMConfig, de: DEConfig,
               data=None, warm_first: bool = False) -> np.ndarray:
    """The least LM chi^2 over each point's starts (P, S, n), every run ending at its data's rounding floor.

    warm_first: starts[:, 0] is a warm start, run first; the others run only where it ended above the
    floor (the answer is then the same to within the floor)."""
    if not warm_first or method != "gradient" or starts.shape[1] < 2:
        return least_over_starts(solve_points(problem, numerics, beta, w, lam, starts, keys, method, lm, de,
                                              data=data, stop_at_rounding=True))
    chi2 = least_over_starts(solve_points(problem, numerics, beta, w, lam, starts[:, :1], keys, method, lm, de,
                                          data=data, stop_at_rounding=True))
    floor = problem.likelihood.chi2_rounding_floor(point_data(problem, len(beta), data))
    rest = np.flatnonzero(~(chi2 < floor))
    if rest.size:
        others = solve_points(problem, numerics.select(rest), beta[rest], w[rest], lam[rest], starts[rest, 1:],
                              keys[rest], method, lm, de, data=None if data is None else np.asarray(data)[rest],
                              stop_at_rounding=True)
        chi2[rest] = np.minimum(chi2[rest], least_over_starts(others))
    return chi2
