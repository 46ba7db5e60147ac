"""MINOS-style asymmetric errors: where chi^2_min rises by `level` when one parameter is fixed away from its best value.

For each named parameter the profile chi^2_min(x_j) (every other free
parameter refitted) is followed from the best fit outwards on each side: the
HESSE error gives the first trial, a secant step on chi^2_min(x_j) - chi^2_best - level
the rest, and once the crossing is bracketed the Illinois variant of regula falsi (`roots.Crossings`,
the search every crossing in qfdjax uses).  iminuit's convention:
the lower error is negative, the upper positive.  If a bound comes first, the
side reports the distance to that bound and says the bound cut the interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .params import ParameterSpace
from .roots import Crossings


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
        sides = Crossings.outward(x0, -level, [-1.0, 1.0], [lo, hi], step0)
        while sides.open.size:
            which = sides.open
            trials = sides.trials(which, secant=True)
            chi2 = pinned_chi2(best, space, {name: trials}, **fit_kwargs)
            sides.record(which, trials, np.asarray(chi2, float) - best["chi2"] - level, xtol=rtol,
                         max_evaluations=max_refits)
        ends = sides.interpolated() - x0
        entry: dict[str, Any] = {}
        for k, side in enumerate(("lower", "upper")):
            entry[side] = None if sides.failed[k] else float(ends[k])
            entry[f"{side}_cut_by_bound"] = bool(sides.cut[k])
            entry[f"{side}_refits"] = int(sides.evaluations[k])
            if sides.failed[k]:
                entry[f"{side}_failed"] = "a refit was not certified converged"
        # iminuit's names for the same facts: a side that reached the parameter's bound, and whether both
        # sides' refits were certified.
        entry["at_lower_limit"], entry["at_upper_limit"] = entry["lower_cut_by_bound"], entry["upper_cut_by_bound"]
        entry["valid"] = not any(f"{side}_failed" in entry for side in ("lower", "upper"))
        out[name] = entry
    return out
