"""Feldman-Cousins confidence regions on a finished (beta, w) scan, with toys at every grid point.

The test statistic is the profile-likelihood ratio of Feldman & Cousins (1998):
t(beta, w) = chi^2_min(beta, w) - chi^2_min over the scan's range.  At each grid
point toys are drawn from that point's best fit (N(prediction, sigma), as in
toys.py, counter-based: toy k of point p is id p * n + k), and each toy's t is
refitted: chi^2_min at the point, and the range's minimum as the least of the toy's
fits at the point, one projected Newton step in (beta, w) from it (the toy's own
profile slopes and Hessian), and the data's refitted minimum -- refits, not grid
nodes, but a local search.  Only the refits' chi^2 is used, so they skip the
diagnostics pass (their minimum is the LM's, within its ftol of a polished one).
A fit of a toy (at its point, or a refit) whose warm start does not end on an exact fit (chi^2 at its
rounding floor, which no start can undercut: `fitting.refits`) runs the scan's starts beside it: with one
Latin-hypercube start instead, on the multimodal wit_c_g_tau_relaxed_fc scan 259 of
2700 toys' t changed (by up to 1.6, either way) and the 68 % critical values by up to
3.8 % (measured).  A lower minimum elsewhere that the search misses leaves the range's
minimum too high, so the toy's t -- and the critical value -- too small: the regions
too narrow, which is not conservative.  How often that happens is measured: the first toy
of a fixed sample of points is also refitted at every grid node, its t corrected, and the
record's "search_check" (printed) says how many of the sampled toys the local search missed
and by how much.  The critical value t_alpha at each CL is the toys' quantile; the point is
accepted when the data's t_obs <= t_alpha.  Wilks' region (t_obs <= 2.30 / 6.18 for two
parameters) is reported beside it.  The 1-D intervals are the projections of the 2-D regions
onto each axis (conservative for one parameter), one-sided where a region touches the range's edge.

Points are fitted in chunks, each written atomically to DIR/fc/ with the run's
fingerprint: an interrupted run resumes with the points it has.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, check_integer, check_range
from ..fitting.levels import WILKS_2D
from ..runtime import with_account
from .fc_chunks import read_chunks, write_chunk

LEVELS = (0.6827, 0.9545)
# 2: chunks carry the sampled full-grid search check (search_deficit); version-1 chunks are another run's.  3: the
# Newton-step and data-minimum refits' LM chi^2, unpolished (t within 3e-12 of version 2's on the seed's 16 x 10
# scan, measured with 40 toys a point).  4: every fit's LM run ends once below the toy's chi^2 rounding floor, and
# a refit's other starts run only where its warm start ended above it (refits.py; t within 4e-13 of version 3's
# there, relative to max(t, 1); the same regions, intervals and certified toys).  5: so do the fits at the toy's
# own point.  6: an exact fit is certified without a second start agreeing.  7: the fits at the toy's point are
# not Newton-polished (one diagnostics pass; t within 1.8e-15 of version 6's, 16 x 10 x 40).
METHOD_VERSION = 7
# The sampled check of each toy's local search costs at most about this many refits over the whole grid.
SEARCH_CHECK_FITS = 4096
# A sampled toy's local search missed its minimum when the full grid finds one lower by more than this
# (the toys' chi^2 are O(1); their fits agree to ~1e-13).
MISS_DCHI2 = 1e-9


def newton_steps(g, H) -> np.ndarray:
    """-H^-1 g for a batch of 2 x 2 profile Hessians; zero where H is not positive definite (or not finite)."""
    det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] * H[:, 1, 0]
    ok = np.isfinite(det) & (H[:, 0, 0] > 0) & (det > 0) & np.all(np.isfinite(g), axis=1)
    safe = np.where(ok, det, 1.0)
    step = -np.stack([H[:, 1, 1] * g[:, 0] - H[:, 0, 1] * g[:, 1],
                      -H[:, 1, 0] * g[:, 0] + H[:, 0, 0] * g[:, 1]], -1) / safe[:, None]
    return np.where(ok[:, None], step, 0.0)


def critical_values(t_toys, valid, levels=LEVELS) -> dict:
    """Per point, the CL quantile of the toys' t ('higher': never below a toy's value; NaN without toys)."""
    t = np.where(valid, t_toys, np.nan)
    out = {}
    for cl in levels:
        with np.errstate(all="ignore"):
            q = np.array([np.nanquantile(row, cl, method="higher") if np.any(np.isfinite(row)) else np.nan
                          for row in t])
        out[f"{cl:g}"] = q
    return out


def projected_interval(axis, accepted) -> dict:
    """The accepted region's extent along one axis, and which ends are the range's own (one-sided there)."""
    axis = np.asarray(axis, float)
    if not np.any(accepted):
        return {"lower": None, "upper": None, "lower_is_edge": False, "upper_is_edge": False, "empty": True}
    idx = np.flatnonzero(accepted)
    lo, hi = int(idx.min()), int(idx.max())
    return {"lower": float(axis[lo]), "upper": float(axis[hi]), "lower_is_edge": lo == 0,
            "upper_is_edge": hi == axis.size - 1, "empty": False}


def describe_interval(name: str, interval: dict, cl: float) -> str:
    if interval["empty"]:
        return f"{name}: no grid point accepted at {100 * cl:.4g} % CL"
    lo, hi = interval["lower"], interval["upper"]
    if lo == hi and (interval["lower_is_edge"] or interval["upper_is_edge"]):
        side = ">=" if interval["upper_is_edge"] else "<="
        return (f"{name} {side} {lo:.6g} at {100 * cl:.4g} % CL (only the range's edge is accepted: the region "
                f"would continue past it)")
    if interval["lower_is_edge"] and interval["upper_is_edge"]:
        return f"{name}: every value of the range accepted at {100 * cl:.4g} % CL"
    if interval["lower_is_edge"]:
        return f"{name} < {hi:.6g} at {100 * cl:.4g} % CL (the region reaches the range's lower edge)"
    if interval["upper_is_edge"]:
        return f"{name} > {lo:.6g} at {100 * cl:.4g} % CL (the region reaches the range's upper edge)"
    return f"{name} in [{lo:.6g}, {hi:.6g}] at {100 * cl:.4g} % CL"


def _fingerprint(record: dict, n: int, seed: int) -> str:
    text = json.dumps({"scan": record["fingerprint"], "n": n, "seed": seed, "method": METHOD_VERSION},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_fc(directory, n: int, seed: int = 0, points_per_chunk: int = 8, progress=None,
           point_range: tuple[int, int] | None = None, team=None) -> dict | None:
    """Feldman-Cousins regions of a finished scan directory; returns the scan record's "fc" entry.

    point_range=(start, stop): fit only those grid points' toys (for splitting the work across hosts that
    share the directory) and return None; a later run without it combines every host's chunks.
    team (from `qfdjax.scans.team.join`): every process calls run_fc alike; each fits every size-th group of
    points, and after all have finished process 0 combines them and returns the entry (the others None)."""
    from ..fitting.diagnostics import SAME_OPTIMUM_RTOL
    from ..fitting.fit import fit_points
    from ..fitting.resources import check_fit_memory
    from ..io import safe_mkdir
    from ..model.constants import lambda_from_eta
    from ..scans.config import ScanConfig
    from ..scans.result import read_scan_arrays, read_scan_record
    from ..scans.team import Team
    from .toys import prediction_at, toy_data

    for name, value in (("fc", n), ("fc seed", seed), ("points per chunk", points_per_chunk)):
        check_integer(name, value)
    check_range("fc", n, lower=1, upper=100_000, integer=True)
    check_range("fc seed", seed, lower=0, upper=2**63 - 1, integer=True)
    check_range("points per chunk", points_per_chunk, lower=1, upper=4096, integer=True)
    record = read_scan_record(directory)
    nb, nw = len(record["beta"]), len(record["w"])
    if record.get("points") != [0, nb * nw]:
        raise InputError(f"dir = {str(directory)!r} holds a partial scan (points {record.get('points')}): merge first")
    arrays = read_scan_arrays(directory, record)
    config = ScanConfig.from_dict(record["config"])
    if config.fingerprint() != record["fingerprint"]:
        raise InputError(f"dir = {str(directory)!r} was written by another qfdjax version (config fingerprint differs)")
    fit_config = config.fit
    if fit_config.method != "gradient":
        from ..fitting.fit import FitConfig

        fit_config = FitConfig(starts=4, seed=fit_config.seed)
    starts = max(fit_config.gradient_starts, 1) + 1
    check_fit_memory("fc", points_per_chunk * n, starts, config.space().size, numerics=config.numerics)
    space, likelihood, profile = config.space(), config.likelihood(), config.make_profile()
    beta_axis, w_axis = config.axes()
    B, W = (a.ravel() for a in np.meshgrid(beta_axis, w_axis, indexing="ij"))
    lam = lambda_from_eta(B, config.eta)
    params = np.asarray(arrays["params"], float)
    chi2 = np.asarray(arrays["chi2"], float)
    minimum = (record.get("profile_intervals") or {}).get("minimum")
    if minimum:
        b_star, w_star, chi2_star = float(minimum["beta"]), float(minimum["w"]), float(minimum["chi2"])
    else:
        k = int(np.nanargmin(chi2))
        b_star, w_star, chi2_star = float(B[k]), float(W[k]), float(chi2[k])
    chi2_star = min(chi2_star, float(np.nanmin(chi2)))
    params_star = params[int(np.nanargmin(chi2))]
    sigma = likelihood.data_sigma()
    fingerprint = _fingerprint(record, n, seed)
    folder = Path(directory) / "fc"
    team = team or Team.solo()
    if team.lead:
        safe_mkdir(folder)
    team.barrier("fc-folder")
    t_all = np.full((B.size, n), np.nan)
    valid_all = np.zeros((B.size, n), bool)
    done = np.zeros(B.size, bool)
    deficit_all = np.full(B.size, np.nan)
    from ..scans.checkpoint import stderr_warning

    read_chunks(folder, fingerprint, t_all, valid_all, done, warn=stderr_warning if team.lead else None,
                deficit_all=deficit_all)
    # The first toy of every stride-th point is also refitted at every grid node: the global minimum over
    # the range that the local search (point, Newton step, data's minimum) may miss.  A fixed choice, so a
    # split, resumed or team run samples the same toys.
    stride = max(1, -(-B.size * B.size // SEARCH_CHECK_FITS))
    t0 = time.perf_counter()
    fit_kwargs = dict(numerics=config.numerics, config=fit_config, space=space, likelihood=likelihood,
                      profile=profile)
    refit_kwargs = dict(fit_kwargs, only_chi2=True)
    # Points go in fixed groups of points_per_chunk (group g: points g*size .. (g+1)*size - 1), whatever is
    # done already or which part a host takes: a batch's composition, and with it every refit's rounding,
    # is then the same in a split, resumed or whole run.
    groups = [np.arange(g, min(g + points_per_chunk, B.size)) for g in range(0, B.size, points_per_chunk)]
    if point_range is not None:
        lo, hi = point_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= B.size):
            raise InputError(f"fc points = {lo}:{hi} is out of range: must satisfy 0 <= START < STOP <= {B.size}")
        if lo % points_per_chunk or (hi % points_per_chunk and hi != B.size):
            raise InputError(f"fc points = {lo}:{hi} must start and end on multiples of the FC chunk "
                             f"({points_per_chunk} points) or at the grid's end ({B.size})")
        groups = [g for g in groups if lo <= g[0] < hi]
    groups = groups[team.rank::team.size]  # a team's round robin: every process gets the same mix of the grid
    todo_groups = [g for g in groups if not np.all(done[g])]
    box = np.array([[beta_axis[0], beta_axis[-1]], [w_axis[0], w_axis[-1]]])
    for points in todo_groups:
        team.check_abort()
        rep = np.repeat(points, n)
        toy_ids = rep * n + np.tile(np.arange(n), points.size)
        predictions = prediction_at(params[points], B[points], W[points], lam[points], config.numerics, space,
                                     likelihood, profile)
        data = np.concatenate([toy_data(predictions[j], sigma, seed, toy_ids[j * n:(j + 1) * n])
                               for j in range(points.size)])
        at_point = fit_points(B[rep], W[rep], lam[rep], data=data, point_ids=toy_ids, extra_starts=params[rep],
                              warm_first=True, polish=False, **fit_kwargs)
        # One projected Newton step in (beta, w) on each toy's own profile, inside the scan's box.
        step = newton_steps(np.stack([at_point["dchi2_dbeta"], at_point["dchi2_dw"]], -1),
                            np.asarray(at_point["profile_hessian"], float))
        z = np.clip(np.stack([B[rep], W[rep]], -1) + step, box[:, 0], box[:, 1])
        newton = fit_points(z[:, 0], z[:, 1], lambda_from_eta(z[:, 0], config.eta), data=data, point_ids=toy_ids,
                            extra_starts=at_point["params"], **refit_kwargs)
        at_star = fit_points(np.full(rep.size, b_star), np.full(rep.size, w_star),
                             np.full(rep.size, lambda_from_eta(b_star, config.eta)), data=data, point_ids=toy_ids,
                             extra_starts=np.repeat(params_star[None], rep.size, axis=0), **refit_kwargs)
        lowest = np.minimum(at_point["chi2"], np.minimum(newton["chi2"], at_star["chi2"]))
        deficit = np.full(points.size, np.nan)
        sampled = np.flatnonzero(points % stride == 0)
        if sampled.size:
            toys_checked = sampled * n  # each sampled point's first toy
            lanes = np.repeat(toys_checked, B.size)
            nodes = np.tile(np.arange(B.size), sampled.size)
            grid = fit_points(B[nodes], W[nodes], lam[nodes], data=data[lanes], point_ids=toy_ids[lanes],
                              extra_starts=params[nodes], **refit_kwargs)
            chi2_nodes = grid["chi2"].reshape(sampled.size, B.size)
            global_min = chi2_nodes.min(axis=1)
            deficit[sampled] = np.maximum(lowest[toys_checked] - global_min, 0.0)
            lowest[toys_checked] = np.minimum(lowest[toys_checked], global_min)
        t = (at_point["chi2"] - lowest).reshape(points.size, n)
        valid = np.asarray(at_point["converged"], bool).reshape(points.size, n)
        write_chunk(folder, fingerprint, points, t, valid, deficit)
        t_all[points], valid_all[points], done[points] = t, valid, True
        deficit_all[points] = deficit
        if progress is not None:
            progress(int(done.sum()), B.size)
    if point_range is not None:
        return None
    if team.size > 1:
        team.barrier("fc-fitted")
        if not team.lead:
            return None
        read_chunks(folder, fingerprint, t_all, valid_all, done, deficit_all=deficit_all)  # the others' points
        if not done.all():
            raise InputError(f"the team finished with {int((~done).sum())} grid points' toys missing in "
                             f"{folder}: rerun every process's command to fit them")
    # t_obs is a difference of two minima of the data's chi^2 (~1.6e7 on the seed's grid), each carrying
    # its rounding: below that it is 0 (the toys' chi^2 are O(1) and need no such floor).
    t_obs = np.clip(chi2 - chi2_star, 0.0, None)
    t_obs = np.where(t_obs <= SAME_OPTIMUM_RTOL * max(abs(chi2_star), 1.0), 0.0, t_obs)
    critical = critical_values(t_all, valid_all)
    # The same critical values over every toy, certified or not: dropping uncertified toys could bias them.
    critical_every = critical_values(t_all, np.isfinite(t_all))
    shape = (nb, nw)
    checked = np.isfinite(deficit_all)
    # A miss: the full grid found a minimum lower than the local search by more than the toys' chi^2 rounding.
    missed = checked & (deficit_all > MISS_DCHI2)
    out = {"cl": list(LEVELS), "toys": n, "seed": seed, "fingerprint": fingerprint,
           "t_observed": t_obs.reshape(shape).tolist(), "t_critical": {}, "accepted": {}, "wilks_accepted": {},
           "intervals": {}, "valid_toys": valid_all.sum(axis=1).reshape(shape).tolist(),
           "t_critical_all_toys": {}, "accepted_all_toys": {},
           "all_toys": np.isfinite(t_all).sum(axis=1).reshape(shape).tolist(),
           "search_check": {"sampled_toys": int(checked.sum()), "missed": int(missed.sum()),
                            "max_t_deficit": float(deficit_all[checked].max()) if checked.any() else None,
                            "what": "the first toy of every point whose index is a multiple of "
                                    f"{stride} refitted at every grid node; a miss is a lower minimum than the local "
                                    "search found, which made that toy's t too small (corrected for the sampled "
                                    "toys, not for the others)"},
           "reference_chi2": chi2_star, "seconds": time.perf_counter() - t0, "timings": with_account(None),
           "processes": team.size,
           "method": "toys at each grid point from its best fit; t = chi2_min(point) - the least of the toy's fits at "
                     "the point, one projected Newton step in (beta, w) and the data's refitted minimum; 1-D "
                     "intervals are projections of the 2-D regions (conservative for one parameter)"}
    for cl in LEVELS:
        key = f"{cl:g}"
        crit = critical[key]
        accepted = (t_obs <= crit) & np.isfinite(crit)
        wilks = t_obs <= WILKS_2D[cl]
        out["t_critical"][key] = crit.reshape(shape).tolist()
        out["accepted"][key] = accepted.reshape(shape).tolist()
        out["wilks_accepted"][key] = wilks.reshape(shape).tolist()
        every = critical_every[key]
        out["t_critical_all_toys"][key] = every.reshape(shape).tolist()
        out["accepted_all_toys"][key] = ((t_obs <= every) & np.isfinite(every)).reshape(shape).tolist()
        grid = accepted.reshape(shape)
        out["intervals"][key] = {"beta": projected_interval(beta_axis, grid.any(axis=1)),
                                 "w": projected_interval(w_axis, grid.any(axis=0))}
    return out


def fc_summary(fc: dict) -> str:
    lines = [f"  Feldman-Cousins ({fc['toys']} toys per grid point, seed {fc['seed']}): {fc['method']}"]
    certified = np.asarray(fc["valid_toys"], int)
    lines.append(f"    each critical value rests on the point's certified toys: median {np.median(certified):.0f}, "
                 f"fewest {certified.min()} of {fc['toys']}")
    for key, intervals in fc["intervals"].items():
        accepted = int(np.sum(fc["accepted"][key]))
        wilks = int(np.sum(fc["wilks_accepted"][key]))
        cl = float(key)
        every = fc.get("accepted_all_toys", {}).get(key)
        lines.append(f"    {100 * cl:.4g} % CL: grid points accepted: {accepted} (Wilks, t <= "
                     f"{WILKS_2D[cl]:g}: {wilks}"
                     + (f"; with every toy, certified or not: {int(np.sum(every))}" if every is not None else "")
                     + "); " + "; ".join(describe_interval(n, i, cl) for n, i in intervals.items()))
    check = fc.get("search_check")
    if check:
        deficit = check["max_t_deficit"]
        lines.append(f"    local search checked against every grid node for {check['sampled_toys']} toys: missed a "
                     f"lower minimum in {check['missed']}"
                     + (f" (largest t shortfall {deficit:.3g})" if check["missed"] else ""))
    return "\n".join(lines)
