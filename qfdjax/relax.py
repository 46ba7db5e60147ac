"""`qfdjax relax`: the smallest widening of the bounds that lets the model fit (chi^2 <= target).

Size is measured per bound in units of that bound's own range (upper - lower
of the starting bounds), summed over the bounds that move: moving mu.U's lower
bound by half its range costs 0.5, whatever mu.U's units.

Method: greedy, guided by the bound costs.  At the current optimum every
active bound has a cost dchi2_min/d(bound) (see fitting/diagnostics.py); the
bound whose cost times range is largest gives the steepest drop per unit of
size, so it moves first.  How far is settled by bisection on refitted chi^2_min
(monotone: widening a bound can only lower the minimum), within the model's
domain (R_c > 0, U > 0, 0 < A <= 1, R_c + w < r_max) and at most
`MAX_WIDENING` ranges.  If that bound alone cannot reach the target it is
left at its limit and the next costliest bound moves, up to `max_moves` bounds.
Greedy is not guaranteed to be the global smallest widening; the report says
how many refits it took and every move it made, so the answer can be checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from .errors import check_range
from .fitting.fit import FitConfig, fit
from .fitting.result import FitResult
from .fitting.params import ParameterSpace
from .model.quadrature import SeedGridSpec

# No bound moves by more than this many of its own ranges.
MAX_WIDENING = 10.0
# Closest a widened bound may come to the edge of the model's domain (R_c, U > 0; A > 0; R_c + w < r_max).
DOMAIN_MARGIN = 1e-6
BISECTION_STEPS = 14


def _domain_limit(name: str, side: str, space: ParameterSpace, w: float, r_max: float) -> float:
    kind = name.split(".")[1]
    lo, hi = space.as_dict()[name]
    span = hi - lo
    if side == "lower":
        floor = {"R_c": DOMAIN_MARGIN, "U": DOMAIN_MARGIN, "A": DOMAIN_MARGIN}[kind]
        return max(floor, lo - MAX_WIDENING * span)
    ceiling = {"R_c": r_max - w - DOMAIN_MARGIN, "U": np.inf, "A": 1.0}[kind]
    return min(ceiling, hi + MAX_WIDENING * span)


def _widened(space: ParameterSpace, name: str, side: str, value: float) -> ParameterSpace:
    lo, hi = space.as_dict()[name]
    return space.with_overrides({name: [value, hi] if side == "lower" else [lo, value]})


def relax(beta: float, w: float, *, target: float = 1.0, max_moves: int = 3, space: ParameterSpace | None = None,
          config: FitConfig = FitConfig(), numerics: str = "exact", observables: Sequence[str] = ("mass",),
          spec: SeedGridSpec = SeedGridSpec(), eta: float | None = None, progress=None) -> dict:
    """Widen bounds, greedily by bound cost, until the refitted chi^2 <= target; returns the R.json record."""
    check_range("target", target, lower=0.0)
    check_range("max_moves", max_moves, lower=1, integer=True)
    space = space or ParameterSpace.seed()
    start_bounds = space.as_dict()
    fits = 0

    def refit(candidate: ParameterSpace) -> FitResult:
        nonlocal fits
        fits += 1
        return fit(beta, w, eta=eta, numerics=numerics, config=config, space=candidate, spec=spec,
                   observables=observables)

    record = refit(space)
    moved: list[dict[str, Any]] = []
    tried: set[str] = set()
    while record["chi2"] > target and len(moved) < max_moves:
        costs = {k: v for k, v in record["bound_costs"].items() if k not in tried}
        if not costs:
            break
        ranked = sorted(costs, key=lambda k: -abs(costs[k]) * np.diff(start_bounds[k.rsplit(".", 1)[0]])[0])
        key = ranked[0]
        tried.add(key)
        name, side = key.rsplit(".", 1)
        old = space.as_dict()[name][0 if side == "lower" else 1]
        limit = _domain_limit(name, side, space, w, spec.r_max)
        if (side == "lower" and limit >= old) or (side == "upper" and limit <= old):
            continue  # already at the domain's edge
        at_limit = refit(_widened(space, name, side, limit))
        if at_limit["chi2"] > target:
            # This bound alone cannot reach the target: take all it offers and move on.
            new, record = limit, at_limit
        else:
            near, far, best = old, limit, at_limit
            for _ in range(BISECTION_STEPS):
                mid = 0.5 * (near + far)
                trial = refit(_widened(space, name, side, mid))
                if trial["chi2"] <= target:
                    far, best = mid, trial
                else:
                    near = mid
            new, record = far, best
        space = _widened(space, name, side, new)
        moved.append({"name": name, "side": side, "old": old, "new": new,
                      "ranges": abs(new - old) / np.diff(start_bounds[name])[0], "chi2_after": record["chi2"]})
        if progress:
            progress(f"moved {name}.{side}: {old:g} -> {new:g}, chi2 = {record['chi2']:.6g}")
    return {
        "beta": float(beta), "w": float(w), "target": float(target), "reached": record["chi2"] <= target,
        "chi2": record["chi2"], "params": record["params"], "param_names": record["param_names"],
        "bounds": space.as_dict(), "start_bounds": start_bounds, "moved": moved,
        "size_in_ranges": float(sum(m["ranges"] for m in moved)), "refits": fits,
        "fit": record, "method": "greedy by bound cost x range, bisection on refitted chi2_min",
        "max_widening_ranges": MAX_WIDENING, "config": dataclasses.asdict(config),
    }


def relax_summary(result: dict) -> str:
    lines = [f"relax at beta = {result['beta']:g}, w = {result['w']:g}: target chi2 <= {result['target']:g}"]
    for m in result["moved"]:
        lines.append(f"  moved {m['name']} {m['side']} bound {m['old']:g} -> {m['new']:.6g} "
                     f"({m['ranges']:.3f} of its range; chi2 then {m['chi2_after']:.6g})")
    if not result["moved"]:
        lines.append("  no bound moved")
    state = "reached" if result["reached"] else "NOT reached"
    lines.append(f"  chi2 = {result['chi2']:.6g} ({state}); total widening {result['size_in_ranges']:.3f} ranges; "
                 f"{result['refits']} refits")
    ident = result["fit"]["identifiability"]
    lines.append(f"  identifiability there: {ident['summary']}")
    return "\n".join(lines)



