"""Delta chi^2 = 1 and 4 ends of the 1-D profiles, measured from the profile's own refitted minimum.

The profile in beta is P(beta) = min over w of chi^2_min(beta, w), with w continuous over the scan's
range (and the same with the axes swapped).  Every value of it here is found by refitting:

1. Profiles at the grid nodes: at each node of an axis, start from the best grid point of that row
   and minimise over the other axis by safeguarded Newton steps on converged fits (the exact slope
   and curvature of chi^2_min in (beta, w): envelope theorem and the Schur complement of each fit).
   Where the optimum lies between grid nodes this is lower than the grid's own profile.
2. The minimum: along beta, the node profile's best node and its neighbours bracket the minimum of
   P(beta); a safeguarded Newton search on dP/dbeta finds it (or it stays on the edge the slope points
   out of).  Its P is the reference level for both axes, reported with its own (beta, w, chi2).
   Why: levels measured from the best grid node put an interval end where Delta chi^2 from the true
   minimum is far above the level (an audit found a w interval 12.8x too wide, a Delta chi^2 ~ 163
   region, where the w minimum lies between nodes, 162 below the best node).
3. The ends: each crossing of reference + level is bracketed by the refined node profiles (with the
   minimum inserted) and found by Newton with the exact profile slope dP/dx, safeguarded by Illinois
   regula falsi inside the bracket (`fitting.roots.Crossings`, the search MINOS, the contour's rays
   and the forecast use too); every trial x is itself a step-1 profile minimisation.

Ends where the profile jumps (the reference numerics' grid changes with w) are reported as such.
"""

from __future__ import annotations

from typing import Any
import numpy as np

from ..fitting.levels import level_brackets
from ..fitting.roots import Crossings

LEVELS = (1.0, 4.0)
# Every scan re-packs its LM lanes down to 64-lane batches (its smallest: solver.SCAN_MIN_LANES; 16x10:
# 256, 64; 64x64: 1024, 256, 64; 256x256: 4096 ... 64): the trial fits use that size.
TRIAL_LANES = 64
# Steps of one profile minimisation over the other axis: Newton converges in 2-4 where chi^2 is
# convex in it; a start where it is not (a flat or concave stretch) needs a few downhill steps first.
INNER_ROUNDS = 30
# A profile minimisation has converged when the step it would still take changes chi^2 by less than
# this, or than CHI2_RTOL of chi^2 itself (rounding: chi^2 ~ 1e7 is known to ~1e-9).
INNER_DCHI2 = 1e-9
CHI2_RTOL = 1e-14


def _minimise_other(evaluate, axis, xs, ys, y_range, tol=INNER_DCHI2, rounds=INNER_ROUNDS):
    """min over the other axis's y in y_range of chi^2_min at each x (axis `axis` fixed at x).

    evaluate(points (m, 2)) -> (chi2, d_beta, d_w, hessian (m, 2, 2)).
    Returns (P, dP/dx, y*, converged, d2P/dx2), each (m,): Newton in y where chi^2's curvature in y is
    positive, else a step of a quarter of the range downhill; a step that does not lower chi^2 is
    halved (at most 12 times) before the point is declared converged where it stands.
    """
    xs, ys = np.asarray(xs, float).copy(), np.asarray(ys, float).copy()
    lo, hi = y_range
    other = 1 - axis

    def points(x, y):
        return np.stack([x, y], -1) if axis == 0 else np.stack([y, x], -1)

    def unpack(values):
        chi2, d_beta, d_w, hess = values
        slopes = (np.asarray(d_beta, float), np.asarray(d_w, float))
        hess = np.asarray(hess, float)
        h_yy = hess[:, other, other]
        # The profile's curvature along x with y re-optimised: the Schur complement of the 2 x 2 block.
        curvature = hess[:, axis, axis] - np.where(h_yy > 0, hess[:, axis, other] ** 2 / np.where(h_yy > 0, h_yy, 1.0),
                                                   0.0)
        return np.asarray(chi2, float), slopes[axis], slopes[other], h_yy, curvature

    chi2, g_x, g_y, h_yy, c_x = unpack(evaluate(points(xs, ys)))
    done = np.zeros(xs.size, bool)
    converged = np.zeros(xs.size, bool)
    # Where chi^2 is not convex in y the step is downhill by `fallback` (grown after a success); a
    # step that does not lower chi^2 is retried at a quarter of its length (`radius`).
    fallback = np.full(xs.size, 0.05 * (hi - lo))
    radius = np.full(xs.size, np.inf)
    for _ in range(rounds):
        proposal = np.where(h_yy > 0, -g_y / np.where(h_yy > 0, h_yy, 1.0), -np.sign(g_y) * fallback)
        full = np.clip(ys + proposal, lo, hi) - ys
        # Converged: the whole step left would change chi^2 by less than tol (or a bound holds y).
        stationary = (np.abs(g_y * full) <= np.maximum(tol, CHI2_RTOL * np.abs(chi2))) | (full == 0.0)
        converged |= ~done & stationary
        done |= stationary | ~np.isfinite(full) | (radius < 1e-12 * (hi - lo))
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        step = np.clip(full, -radius, radius)
        target = ys + step
        t_chi2, t_gx, t_gy, t_h, t_c = unpack(evaluate(points(xs[active], target[active])))
        better = np.isfinite(t_chi2) & (t_chi2 <= chi2[active])
        take = active[better]
        ys[take], chi2[take], g_x[take], g_y[take], h_yy[take], c_x[take] = (
            target[take], t_chi2[better], t_gx[better], t_gy[better], t_h[better], t_c[better])
        fallback[take] = np.minimum(2.0 * np.maximum(fallback[take], np.abs(step[take])), hi - lo)
        radius[take] = np.inf
        worse = active[~better]
        radius[worse] = 0.25 * np.abs(step[worse])
        fallback[worse] = radius[worse]
    return chi2, g_x, ys, converged, c_x


def _minimum_along(evaluate, axis, axes, node_p, node_y, node_g, y_range, max_rounds=12):
    """The minimum of the axis's profile P(x): (x*, P*, y*, converged), starting from the node profiles.

    The best node and its neighbours bracket it (unless the best node is an edge the slope points out
    of: the minimum is that edge).  Each round refits four points spread over the bracket and a Newton
    step from the best point so far (where P's curvature is positive), all in one batch, and shrinks
    the bracket to the best point's sampled neighbours; a stationary point that is a maximum of P (a
    node between two minima) is never taken for the minimum.  Converged when the Newton step left
    would lower P by less than INNER_DCHI2.
    """
    x = axes[axis]
    k = int(np.nanargmin(node_p))
    best = [float(x[k]), float(node_p[k]), float(node_y[k]), float(node_g[k]), np.nan]
    if x.size < 2 or (k == 0 and node_g[0] >= 0) or (k == x.size - 1 and node_g[-1] <= 0):
        return best[0], best[1], best[2], True
    samples = {float(x[j]): float(node_p[j]) for j in range(max(k - 1, 0), min(k + 2, x.size))}
    converged = False
    for _ in range(max_rounds):
        xs = sorted(samples)
        at = xs.index(best[0])
        lo, hi = xs[max(at - 1, 0)], xs[min(at + 1, len(xs) - 1)]
        trials = list(np.linspace(lo, hi, 6)[1:-1])
        if np.isfinite(best[4]) and best[4] > 0:
            newton = best[0] - best[3] / best[4]
            if best[3] ** 2 / (2 * best[4]) <= max(INNER_DCHI2, CHI2_RTOL * abs(best[1])) and lo <= newton <= hi:
                converged = True
                break
            if lo < newton < hi:
                trials.append(newton)
        tol = max(INNER_DCHI2, CHI2_RTOL * abs(best[1]))
        spread = max(v for k, v in samples.items() if lo <= k <= hi) - best[1]
        if hi - lo <= 1e-12 * max(abs(best[0]), 1.0) or spread <= tol:
            # The bracket is gone, or the profile is flat across it to within tol (an exact fit everywhere).
            converged = True
            break
        trials = [t for t in trials if t not in samples]
        p, g, y, ok, c = _minimise_other(evaluate, axis, trials, [best[2]] * len(trials), y_range)
        for t, pt, gt, yt, ct in zip(trials, p, g, y, c, strict=True):
            samples[float(t)] = float(pt)
            if pt < best[1]:
                best = [float(t), float(pt), float(yt), float(gt), float(ct)]
    return best[0], best[1], best[2], converged


def refine_intervals(evaluate, beta, w, chi2, slopes, levels=LEVELS, atol=1e-3, max_rounds=12) -> dict:
    """Minimum and interval ends of the beta and w profiles at each Delta chi^2 level, by refitting.

    evaluate(points (m, 2) of (beta, w)) -> (chi2 (m,), dchi2_dbeta (m,), dchi2_dw (m,), profile Hessian
    (m, 2, 2)): converged fits.  slopes: the grid's (dchi2_dbeta, dchi2_dw), each shaped like chi2.
    Returns {"minimum": {...}, "beta": {"1": {"lower": x, "upper": x, ...}, ...}, "w": ..., "evaluations":
    fits done, "reference_chi2": the refitted minimum}; a side without a crossing in the range is None.
    """
    beta, w, chi2 = (np.asarray(a, float) for a in (beta, w, chi2))
    axes = (beta, w)
    counter = {"points": 0}

    def counted(points):
        counter["points"] += len(points)
        return evaluate(np.asarray(points, float))

    # 1. Profiles at every node of both axes, minimised over the other axis.
    nodes = {}
    for axis in (0, 1):
        other = 1 - axis
        arg = np.nanargmin(chi2, axis=other)
        start_y = axes[other][arg]
        y_range = (float(axes[other][0]), float(axes[other][-1]))
        p, g, y, ok, _ = _minimise_other(counted, axis, axes[axis], start_y, y_range)
        grid_p = np.nanmin(chi2, axis=other)
        # Never above the grid's own profile: a node the refits do not improve keeps its grid value.
        keep = ~(p <= grid_p)
        grid_g = np.asarray(slopes[axis])[(np.arange(axes[axis].size), arg) if axis == 0 else
                                          (arg, np.arange(axes[axis].size))]
        p, g, y = np.where(keep, grid_p, p), np.where(keep, grid_g, g), np.where(keep, start_y, y)
        nodes[axis] = {"p": p, "g": g, "y": y, "ok": ok | keep, "y_range": y_range}
    # 2. The minimum, along beta (then checked along w: both must find the same level).
    found = [_minimum_along(counted, axis, axes, nodes[axis]["p"], nodes[axis]["y"], nodes[axis]["g"],
                            nodes[axis]["y_range"]) for axis in (0, 1)]
    axis_min = int(np.argmin([f[1] for f in found]))
    x_star, ref, y_star, ok_star = found[axis_min]
    minimum = {"beta": x_star if axis_min == 0 else y_star, "w": y_star if axis_min == 0 else x_star,
               "chi2": ref, "grid_chi2": float(np.nanmin(chi2)), "converged": bool(ok_star),
               "along": ("beta", "w")[axis_min]}
    # 3. The ends, bracketed by the node profiles with the minimum inserted.
    crossings = []
    for axis in (0, 1):
        n = nodes[axis]
        if axes[axis].size < 2:
            continue
        star_x = minimum["beta"] if axis == 0 else minimum["w"]
        star_y = minimum["w"] if axis == 0 else minimum["beta"]
        xs = np.append(axes[axis], star_x)
        order = np.argsort(xs, kind="stable")
        xs, ps = xs[order], np.append(n["p"], ref)[order]
        gs, ys = np.append(n["g"], 0.0)[order], np.append(n["y"], star_y)[order]
        for level in levels:
            for side, a, b in level_brackets(ps - ref, level, start=int(np.argmin(ps))):
                crossings.append({"axis": axis, "level": level, "side": side, "y_range": n["y_range"],
                                  "a": (xs[a], ps[a] - ref - level, gs[a]), "b": (xs[b], ps[b] - ref - level, gs[b]),
                                  "y": ys[a]})
    end_a, end_b = (np.array([c[end] for c in crossings], float).reshape(-1, 3) for end in ("a", "b"))
    search = Crossings.bracketed(end_a[:, 0], end_a[:, 1], end_b[:, 0], end_b[:, 1], ga=end_a[:, 2], gb=end_b[:, 2])
    axis_of = np.array([c["axis"] for c in crossings], int)
    ys_now = np.array([c["y"] for c in crossings], float)
    ok_now = np.zeros(len(crossings), bool)
    while search.open.size:
        which = search.open
        for axis in (0, 1):
            mine = which[axis_of[which] == axis]
            if mine.size:
                # One batch of refits per axis and round: every crossing's trial at once.
                trials = search.trials(mine, newton=True, margin=1e-3)
                p, g, y, ok, _ = _minimise_other(counted, axis, trials, ys_now[mine], crossings[mine[0]]["y_range"])
                ys_now[mine], ok_now[mine] = y, ok
                f = np.asarray(p, float) - ref - np.array([crossings[k]["level"] for k in mine])
                search.record(mine, trials, f, g, ftol=atol, max_evaluations=max_rounds)
    # A bracket that shrinks to nothing with |f| still large is a jump of the profile (the reference
    # numerics' quadrature grid changes with w): the end is that point.
    jump = ~search.hit & search.narrow
    for k, c in enumerate(crossings):
        c.update(x=None if np.isnan(search.x[k]) else float(search.x[k]), converged=bool(search.hit[k] and ok_now[k]),
                 jump=bool(jump[k]))
    out = {"beta": {}, "w": {}, "evaluations": counter["points"], "reference_chi2": ref, "minimum": minimum,
           "method": "refit", "node_profiles": {name: nodes[axis]["p"].tolist() for axis, name in ((0, "beta"),
                                                                                               (1, "w"))}}
    for axis, name in ((0, "beta"), (1, "w")):
        for level in levels:
            ends: dict[str, Any] = {"lower": None, "upper": None}
            for c in crossings:
                if c["axis"] == axis and c["level"] == level:
                    ends[c["side"]] = None if c["x"] is None else float(c["x"])
                    ends[f"{c['side']}_converged"] = bool(c["converged"])
                    ends[f"{c['side']}_jump"] = bool(c["jump"])
            out[name][f"{level:g}"] = ends
    return out


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
        return fitted["chi2"][:n], fitted["dchi2_dbeta"][:n], fitted["dchi2_dw"][:n], fitted["profile_hessian"][:n]

    return refine_intervals(evaluate, beta_axis, w_axis, chi2, slopes)
