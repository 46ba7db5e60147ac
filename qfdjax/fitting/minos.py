"""MINOS-style asymmetric errors: where chi^2_min rises by `level` when one parameter is fixed away from its best value.

For each named parameter the profile chi^2_min(x_j) (every other free
parameter refitted) is followed from the best fit outwards on each side: the
HESSE error gives the first trial, a secant step on chi^2_min(x_j) - chi^2_best - level
the rest, with bisection once the crossing is bracketed.  iminuit's convention:
the lower error is negative, the upper positive.  If a bound comes first, the
side reports the distance to that bound and says the bound cut the interval.
"""

from __future__ import annotations


from ..errors import InputError
from .fit import fit
from .params import ParameterSpace


def _profile_at(name: str, value: float, best: dict, space: ParameterSpace, fit_kwargs: dict) -> float:
    fixed_space = space.with_overrides(fixed={name: value})
    return fit(best["beta"], best["w"], best["lam"], space=fixed_space, **fit_kwargs)["chi2"]


def minos(best: dict, names, space: ParameterSpace, level: float = 1.0, rtol: float = 1e-3,
          max_refits: int = 30, **fit_kwargs) -> dict:
    """{name: {"lower": -d, "upper": +d, "lower_cut_by_bound": bool, "upper_cut_by_bound": bool}}."""
    values = dict(zip(best["param_names"], best["params"]))
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
        entry = {}
        for side, sign, limit in (("lower", -1.0, lo), ("upper", 1.0, hi)):
            target = best["chi2"] + level
            inside, inside_val = x0, best["chi2"]
            trial = x0 + sign * step0
            crossing, cut = None, False
            refits = 0
            outside = None
            while refits < max_refits:
                if (sign < 0 and trial <= limit) or (sign > 0 and trial >= limit):
                    trial = limit
                value = _profile_at(name, trial, best, space, fit_kwargs)
                refits += 1
                if value >= target:
                    outside = (trial, value)
                    break
                inside, inside_val = trial, value
                if trial == limit:
                    cut = True
                    break
                # Secant towards the crossing from the last two inside points (or double the step).
                slope = (value - best["chi2"]) / (trial - x0)
                guess = x0 + (target - best["chi2"]) / slope if slope * sign > 0 else trial + 2 * (trial - x0)
                trial = guess if (guess - trial) * sign > 0 else trial + (trial - x0)
            if outside is not None:
                a, fa = inside, inside_val
                b, fb = outside
                while refits < max_refits and abs(b - a) > rtol * abs(b - x0):
                    mid = a + (target - fa) * (b - a) / (fb - fa)
                    mid = min(max(mid, min(a, b)), max(a, b))
                    if abs(mid - a) < 0.05 * abs(b - a) or abs(mid - b) < 0.05 * abs(b - a):
                        mid = 0.5 * (a + b)
                    fm = _profile_at(name, mid, best, space, fit_kwargs)
                    refits += 1
                    if fm >= target:
                        b, fb = mid, fm
                    else:
                        a, fa = mid, fm
                crossing = a + (target - fa) * (b - a) / (fb - fa)
            entry[side] = (crossing if crossing is not None else inside) - x0
            entry[f"{side}_cut_by_bound"] = cut
            entry[f"{side}_refits"] = refits
        out[name] = entry
    return out
