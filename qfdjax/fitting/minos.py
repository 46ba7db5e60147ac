"""MINOS-style asymmetric errors: where chi^2_min rises by `level` when one parameter is fixed away from its best value.

For each named parameter the profile chi^2_min(x_j) (every other free
parameter refitted) is followed from the best fit outwards on each side: the
HESSE error gives the first trial, a secant step on chi^2_min(x_j) - chi^2_best - level
the rest, and once the crossing is bracketed the Illinois variant of regula falsi (the end
that did not move last time counts half, so a convex profile no longer pins one end of the
bracket: 11 refits on one side of the identifiable fit's mu.U and tau.U became 2).  iminuit's convention:
the lower error is negative, the upper positive.  If a bound comes first, the
side reports the distance to that bound and says the bound cut the interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from .params import ParameterSpace


class _Side:
    """The search for one side's crossing, one refit at a time: `trial()` proposes, `record()` learns."""

    def __init__(self, x0: float, chi2_best: float, target: float, sign: float, limit: float, step0: float,
                 rtol: float, max_refits: int):
        self.x0, self.best, self.target, self.sign, self.limit = x0, chi2_best, target, sign, limit
        self.rtol, self.max_refits = rtol, max_refits
        self.inside = (x0, chi2_best)
        self.outside: tuple[float, float] | None = None
        self.next = x0 + sign * step0
        self.refits, self.cut, self.failed, self.done = 0, False, False, False
        # Illinois weights of the inside and outside ends, and which end moved last.
        self.weight = {"inside": 1.0, "outside": 1.0}
        self.moved: str | None = None

    def trial(self) -> float:
        if self.outside is None:
            past = (self.sign < 0 and self.next <= self.limit) or (self.sign > 0 and self.next >= self.limit)
            return self.limit if past else self.next
        (a, fa), (b, fb) = self.inside, self.outside
        ga = (fa - self.target) * self.weight["inside"]
        gb = (fb - self.target) * self.weight["outside"]
        mid = a - ga * (b - a) / (gb - ga)
        return min(max(mid, min(a, b)), max(a, b))

    def _moved(self, end: str) -> None:
        other = "outside" if end == "inside" else "inside"
        if self.outside is not None and self.moved == end:
            self.weight[other] *= 0.5
        else:
            self.weight[other] = 1.0
        self.weight[end] = 1.0
        self.moved = end

    def record(self, trial: float, value: float) -> None:
        self.refits += 1
        if not math.isfinite(value):
            # A refit without a guarantee cannot place the crossing: the side is reported as failed.
            self.failed = self.done = True
            return
        if value >= self.target:
            bracketed = self.outside is not None
            self.outside = (trial, value)
            if bracketed:
                self._moved("outside")
        else:
            self.inside = (trial, value)
            if self.outside is not None:
                self._moved("inside")
            if self.outside is None and trial == self.limit:
                self.cut = self.done = True
                return
            if self.outside is None:
                # Secant towards the crossing from the best fit (or double the step).
                slope = (value - self.best) / (trial - self.x0)
                guess = (self.x0 + (self.target - self.best) / slope if slope * self.sign > 0
                         else trial + 2 * (trial - self.x0))
                self.next = guess if (guess - trial) * self.sign > 0 else trial + (trial - self.x0)
        if self.outside is not None and abs(self.outside[0] - self.inside[0]) <= self.rtol * abs(self.outside[0] - self.x0):
            self.done = True
        if self.refits >= self.max_refits:
            self.done = True

    def error(self) -> float | None:
        if self.failed:
            return None
        if self.outside is None:
            return self.inside[0] - self.x0
        (a, fa), (b, fb) = self.inside, self.outside
        return a + (self.target - fa) * (b - a) / (fb - fa) - self.x0


def minos(best: Any, names, space: ParameterSpace, level: float = 1.0, rtol: float = 1e-3,
          max_refits: int = 30, **fit_kwargs) -> dict:
    """{name: {"lower": -d, "upper": +d, "lower_cut_by_bound": bool, "upper_cut_by_bound": bool}}.

    Both sides of a parameter are refitted together, as two lanes of one fit call per round.
    """
    from .param_profile import pinned_chi2

    values = dict(zip(best["param_names"], best["params"], strict=True))
    bounds = space.as_dict()
    out = {}
    for name in names:
        if name not in values:
            raise InputError(f"minos parameter {name!r} is unknown: parameters are {', '.join(values)}")
        lo, hi = bounds[name]
        if lo == hi or name in best["at_bounds"]:
            raise InputError(f"minos parameter {name} is fixed or on a bound at the best fit: no interval to profile")
        x0 = values[name]
        step0 = best.get("errors", {}).get(name) or 0.01 * (hi - lo)
        sides = {side: _Side(x0, best["chi2"], best["chi2"] + level, sign, limit, step0, rtol, max_refits)
                 for side, sign, limit in (("lower", -1.0, lo), ("upper", 1.0, hi))}
        while True:
            active = [s for s in sides.values() if not s.done]
            if not active:
                break
            trials = [s.trial() for s in active]
            chi2 = pinned_chi2(best, space, {name: np.array(trials)}, **fit_kwargs)
            for s, t, v in zip(active, trials, chi2, strict=True):
                s.record(t, float(v))
        entry: dict[str, Any] = {}
        for side, s in sides.items():
            entry[side] = s.error()
            entry[f"{side}_cut_by_bound"] = s.cut
            entry[f"{side}_refits"] = s.refits
            if s.failed:
                entry[f"{side}_failed"] = "a refit was not certified converged"
        # iminuit's names for the same facts: a side that reached the parameter's bound, and whether both
        # sides' refits were certified.
        entry["at_lower_limit"], entry["at_upper_limit"] = entry["lower_cut_by_bound"], entry["upper_cut_by_bound"]
        entry["valid"] = not any(f"{side}_failed" in entry for side in sides)
        out[name] = entry
    return out
