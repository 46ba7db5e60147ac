"""Delta chi^2 = 1 and 4 ends of the 1-D profiles, found by refitting between grid points.

Why: linear interpolation of the grid profile across the last cell puts an
interval end where the straight line crosses the level, not where the curved
profile does (on the seed's grid the w end came out 17-31 % too wide).  Here
each crossing is bracketed by the grid, then found by root finding on the
profile itself: every trial value is a new batch of converged fits, and the
exact profile slope (envelope theorem: dchi2_dbeta, dchi2_dw of the fit at the
profile's optimum) gives Newton steps, safeguarded by regula falsi inside the
bracket.

The profile at a trial x is the minimum over the other axis's grid values
near the profile's path (the optimum's column at both bracket ends, +-1): at
grid points it is exactly the scan's own profile, so the levels are measured
from the same chi2_min and the ends agree with the grid where the grid has
them.
"""

from __future__ import annotations

import numpy as np

from ..fitting.levels import level_brackets

LEVELS = (1.0, 4.0)
# Every scan of 16+ points with 8 starts re-packs its LM lanes through a 128-lane bucket
# (64x64: 512, 256, 128; 16x10: down to 64): the trial fits use that one.
TRIAL_LANES = 128


def _profile(chi2, axis):
    """Profile over axis 0 (beta) or 1 (w): values and the other axis's index of each optimum."""
    other = 1 - axis
    return np.nanmin(chi2, axis=other), np.nanargmin(chi2, axis=other)


def refine_intervals(evaluate, beta, w, chi2, slopes, levels=LEVELS, atol=1e-3, max_rounds=12) -> dict:
    """Interval ends of the beta and w profiles at each Delta chi^2 level, by refitting.

    evaluate(points (m, 2) of (beta, w)) -> (chi2 (m,), dchi2_dbeta (m,), dchi2_dw (m,)): converged fits.
    slopes: the grid's (dchi2_dbeta, dchi2_dw), each shaped like chi2.
    Returns {"beta": {"1": {"lower": x, "upper": x}, ...}, "w": ..., "evaluations": fits done};
    a side without a crossing on the grid is None.
    """
    beta, w, chi2 = (np.asarray(a, float) for a in (beta, w, chi2))
    axes = (beta, w)
    ref = float(np.nanmin(chi2))
    crossings = []  # one dict per (axis, level, side) still to find
    for axis in (0, 1):
        values, arg = _profile(chi2, axis)
        if values.size < 2:
            continue
        for level in levels:
            for side, a, b in level_brackets(values - np.nanmin(values), level):
                lo, hi = sorted((arg[a], arg[b]))
                others = np.arange(max(lo - 1, 0), min(hi + 2, axes[1 - axis].size))
                grid_slope = lambda k: float(np.asarray(slopes[axis])[(k, arg[k]) if axis == 0 else (arg[k], k)])
                crossings.append({"axis": axis, "level": level, "side": side, "others": others,
                                  "a": (axes[axis][a], values[a] - ref - level, grid_slope(a)),
                                  "b": (axes[axis][b], values[b] - ref - level, grid_slope(b)),
                                  "x": None, "done": False, "converged": False, "jump": False, "last": None,
                                  "repeat": 0})
    evaluations = 0
    for _ in range(max_rounds):
        active = [c for c in crossings if not c["done"]]
        if not active:
            break
        trials = [_next_trial(c) for c in active]
        points, owners = [], []
        for n, (c, x) in enumerate(zip(active, trials)):
            for y in axes[1 - c["axis"]][c["others"]]:
                points.append((x, y) if c["axis"] == 0 else (y, x))
                owners.append(n)
        values, d_beta, d_w = evaluate(np.array(points))
        evaluations += len(points)
        owners = np.array(owners)
        for n, (c, x) in enumerate(zip(active, trials)):
            mine = np.flatnonzero(owners == n)
            best = mine[np.nanargmin(values[mine])]
            f = float(values[best]) - ref - c["level"]
            slope = float((d_beta if c["axis"] == 0 else d_w)[best])
            c["x"] = x
            c["converged"] = abs(f) <= atol
            if c["converged"] or abs(c["b"][0] - c["a"][0]) <= 1e-12 * max(abs(x), 1.0):
                # A bracket that shrinks to nothing with |f| still large is a jump of the profile
                # (the reference numerics' quadrature grid changes with w): the end is that point.
                c["done"] = True
                c["jump"] = not c["converged"]
            else:
                end = "a" if f < 0 else "b"
                c[end] = (x, f, slope)
                c["repeat"] = c["repeat"] + 1 if c["last"] == end else 1
                c["last"] = end
    out = {"beta": {}, "w": {}, "evaluations": evaluations, "reference_chi2": ref, "method": "refit"}
    for axis, name in ((0, "beta"), (1, "w")):
        for level in levels:
            ends = {"lower": None, "upper": None}
            for c in crossings:
                if c["axis"] == axis and c["level"] == level:
                    ends[c["side"]] = None if c["x"] is None else float(c["x"])
                    ends[f"{c['side']}_converged"] = bool(c["converged"])
                    ends[f"{c['side']}_jump"] = bool(c["jump"])
            out[name][f"{level:g}"] = ends
    return out


def _next_trial(c) -> float:
    """Newton from the bracket end nearer the level if it lands inside; else Illinois regula falsi."""
    (xa, fa, sa), (xb, fb, sb) = c["a"], c["b"]
    lo, hi = min(xa, xb), max(xa, xb)
    x0, f0, s0 = (xa, fa, sa) if abs(fa) <= abs(fb) else (xb, fb, sb)
    if np.isfinite(s0) and s0 != 0.0 and c["repeat"] < 2:
        x = x0 - f0 / s0
        if lo < x < hi:
            return float(x)
    # Illinois: an end that has not moved for several rounds gets its weight halved each time,
    # so the secant cannot creep towards the root from one side only.
    weight = 0.5 ** max(c["repeat"] - 1, 0)
    fa_w = fa * (weight if c["last"] == "b" else 1.0)
    fb_w = fb * (weight if c["last"] == "a" else 1.0)
    x = (xa * fb_w - xb * fa_w) / (fb_w - fa_w)
    inner = 1e-3 * (hi - lo)
    return float(np.clip(x, lo + inner, hi - inner))


def refit_profile_intervals(config, beta_axis, w_axis, summary: dict, chunk: int = 64) -> dict:
    """`refine_intervals` for a finished scan: trial points fitted as the scan fits its grid points."""
    from ..fitting.kernel import initial_starts
    from ..model.constants import lambda_from_eta
    from .solver import ChunkSolver

    beta_axis, w_axis = np.asarray(beta_axis, float), np.asarray(w_axis, float)
    shape = (beta_axis.size, w_axis.size)
    chi2 = np.asarray(summary["chi2"], float).reshape(shape)
    slopes = tuple(np.asarray(summary[k], float).reshape(shape) for k in ("dchi2_dbeta", "dchi2_dw"))
    optima = np.asarray(summary["u"], float).reshape(*shape, -1) if "u" in summary else None
    space = config.space()
    count = max(config.fit.gradient_starts, 1)
    # Trial batches are padded (repeating their last point) to shapes the scan itself has
    # loaded: LM rounds of at least TRIAL_LANES lanes, never re-packed smaller, and
    # diagnostics of a whole chunk.  A handful of trial points would otherwise need
    # kernels of their own: 0.2 s each to load warm on two cores, seconds to compile cold
    # (12 s of a cold 64x64 scan), for milliseconds of work.
    lm_points = -(-TRIAL_LANES // count)
    diagnostics_points = min(chunk, beta_axis.size * w_axis.size)

    def evaluate(points):
        n = len(points)
        pad = np.minimum(np.arange(max(n, lm_points, diagnostics_points)), n - 1)
        B, W = np.asarray(points[pad, 0], float), np.asarray(points[pad, 1], float)
        # diagnoses=False: the diagnostics run on the padded chunk below, a shape the scan has loaded;
        # readying one for the trial fits' own size would load (or compile) a kernel never called.
        solver = ChunkSolver(config, B, W, lambda_from_eta(B, config.eta), chunk, diagnoses=False)
        ids = np.arange(max(n, lm_points))
        starts = None
        if optima is not None:
            # The optima of the grid points around each trial value start its fit (with the
            # Latin-hypercube starts for the rest): the profile is followed, not re-searched.
            starts, _ = initial_starts(space, count, ids, config.fit.seed)
            ib = np.clip(np.searchsorted(beta_axis, B[:ids.size]), 1, max(beta_axis.size - 1, 1))
            iw = np.clip(np.searchsorted(w_axis, W[:ids.size]), 1, max(w_axis.size - 1, 1))
            around = [(ib - db, iw - dw) for db in (0, 1) for dw in (0, 1)]
            for k, (bi, wi) in enumerate(around[:count]):
                starts[:, k] = optima[np.clip(bi, 0, shape[0] - 1), np.clip(wi, 0, shape[1] - 1)]
        solution = solver.solve_all(ids, starts, method="gradient", min_lanes=TRIAL_LANES)
        everyone = np.arange(B.size)
        fitted = solver.summarize_all(everyone, {k: v[np.minimum(everyone, ids.size - 1)] for k, v in solution.items()})
        return fitted["chi2"][:n], fitted["dchi2_dbeta"][:n], fitted["dchi2_dw"][:n]

    return refine_intervals(evaluate, beta_axis, w_axis, chi2, slopes)
