"""Analysis of a chi^2(beta, w) scan: minimum, Delta chi^2 regions, profiles, flags, verdict.

Everything here works on plain arrays, so `qfdjax report DIR` can redo it from
saved results, and the tests can feed it constructed surfaces.
"""

from __future__ import annotations

from typing import Any
import numpy as np

from ..model.constants import GOLDEN_LOOP_BETA
from ..fitting.certificate import chi2_text, is_exact_chi2
from .surface import contour_regions, profile_1d, refine_minimum

# The seed's decision tree: "chi^2 ~ O(1)" and beta_min near 3.10 (A) or 3.20 (B).
CHI2_ORDER_ONE = 10.0
PATH_A_BETA = 3.10
PATH_B_BETA = 3.20
BETA_MATCH = 0.05
# A profile slope whose change of chi2_min across the whole beta range is below this fraction of chi2_min is
# rounding (a flat profile of the committed experiments: 1e-17 of chi2_min; their real slopes move it by >= 3e-5).
FLAT_SLOPE_RTOL = 1e-12


def analyse_scan(record: dict, chi2_order_one: float = CHI2_ORDER_ONE) -> dict:
    """Minimum, Delta chi^2 regions, profiles, flags and the Path A/B/C verdict.

    Parameters
    ----------
    record : dict
        A finished scan's record (``ScanResult`` or the JSON of scan.json).
    chi2_order_one : float
        chi^2_min at or below which the fit counts as O(1) (Path A/B rather than C).

    Returns
    -------
    dict
        minimum, chi2_min, edge_minimum, profile_beta, profile_w, contours, bound_fraction,
        identifiability, degeneracy, and the verdict {"path", "reasons", ...}."""
    beta = np.asarray(record["beta"], float)
    w = np.asarray(record["w"], float)
    chi2 = np.asarray(record["chi2"], float)
    log_w = record.get("config", {}).get("w_spacing", "log") == "log"
    names = record["param_names"]
    nb, nw = chi2.shape

    best = refine_minimum(beta, w, chi2, log_w)
    best["method"] = "quadratic interpolation of the grid" if best["refined"] else "grid node"
    i, j = best["index"]
    delta = chi2 - chi2[i, j]
    refined = record.get("profile_intervals") or {}
    if isinstance(refined.get("minimum"), dict):
        # The profiles' own minimum, refitted (intervals.py): its chi^2 is the level the ends are measured from.
        m = refined["minimum"]
        best.update(beta=float(m["beta"]), w=float(m["w"]), chi2=float(m["chi2"]), refined=True, method="refit",
                    converged=bool(m.get("converged", True)))
    nodes = refined.get("node_profiles") or {}
    reference = refined.get("reference_chi2") if best.get("method") == "refit" else None
    refit = best.get("method") == "refit"
    prof_beta = profile_1d(beta, nodes.get("beta", np.nanmin(chi2, axis=1)), refined=refined.get("beta"),
                           reference=reference, refit_min_at=best["beta"] if refit else None)
    prof_w = profile_1d(w, nodes.get("w", np.nanmin(chi2, axis=0)), log_axis=log_w, refined=refined.get("w"),
                        reference=reference, refit_min_at=best["w"] if refit else None)

    edges = {}
    if nb > 1 and i in (0, nb - 1):
        edges["beta"] = {"edge": "lower" if i == 0 else "upper", "value": float(beta[i])}
    if nw > 1 and j in (0, nw - 1):
        edges["w"] = {"edge": "lower" if j == 0 else "upper", "value": float(w[j])}

    conv = record.get("convergence", {})
    at_bounds = conv.get("at_bounds", [])
    flat_at = [set(x) for x in at_bounds]
    bound_fraction = {n: float(np.mean([n in s for s in flat_at])) if flat_at else 0.0 for n in names}
    at_min = sorted(flat_at[i * nw + j]) if flat_at else []
    converged = np.asarray(conv.get("converged", np.ones_like(chi2, bool)), bool)
    not_converged = [[float(beta[a]), float(w[b])] for a, b in zip(*np.nonzero(~converged), strict=True)]

    # A fit-noise bump: an interior profile point above both neighbours.
    bumps = []
    for label, axis, prof in (("beta", beta, np.nanmin(chi2, axis=1)), ("w", w, np.nanmin(chi2, axis=0))):
        for k in range(1, axis.size - 1):
            if prof[k] > prof[k - 1] and prof[k] > prof[k + 1] and \
                    prof[k] - max(prof[k - 1], prof[k + 1]) > 1e-9 * abs(prof[k]) + 0.1:
                bumps.append({"axis": label, "value": float(axis[k])})

    degeneracy = record.get("hessian_eigenvalues_at_min")
    beta_min = best["beta"]
    golden = {"beta_golden": GOLDEN_LOOP_BETA, "offset": beta_min - GOLDEN_LOOP_BETA,
              "offset_percent": 100.0 * (beta_min - GOLDEN_LOOP_BETA) / GOLDEN_LOOP_BETA}
    monotone_beta = bool(np.all(np.diff(np.nanmin(chi2, axis=1)) < 0) or np.all(np.diff(np.nanmin(chi2, axis=1)) > 0))

    reasons = []
    profile_span = float(np.nanmax(np.nanmin(chi2, axis=1)) - np.nanmin(chi2))
    # The refitted minimum where the scan found one (never above the best grid node), else the node.
    chi2_min = float(min(best["chi2"], chi2[i, j])) if best.get("method") == "refit" else float(chi2[i, j])
    # An exact fit (chi^2 at its rounding) gains nothing from any bound (chi^2 >= 0): its active bounds, their
    # multipliers (the gradient's rounding) and its place on the grid are not findings.
    exact_min = is_exact_chi2(chi2_min)
    if chi2_min > chi2_order_one:
        path = "C"
        reasons.append(f"chi2_min = {chi2_min:.6g} is not O(1) (threshold {chi2_order_one:g}): the model cannot "
                       f"fit the data to their sigmas within these bounds")
    else:
        # Path A is a located beta minimum near 3.1: not a rounding tie on a flat profile (every fit exact),
        # nor the grid's edge.
        located = nb > 1 and profile_span > 1.0 and not edges.get("beta")
        near_a = located and abs(beta_min - PATH_A_BETA) <= BETA_MATCH
        near_b = abs(beta_min - PATH_B_BETA) <= BETA_MATCH
        path = "A" if near_a else "B"
        reasons.append(f"chi2_min = {chi2_min:.4g} is O(1)" if not exact_min else
                       "chi2_min = 0 to rounding: the data are fitted exactly, and where the minimum sits among "
                       "exact fits is a rounding tie, not a measurement")
        if not located:
            reasons.append(f"beta_min = {beta_min:.4f} is not a located minimum (flat or edge beta profile): "
                           f"investigate")
        elif near_a:
            reasons.append(f"beta_min = {beta_min:.4f} is within {BETA_MATCH} of {PATH_A_BETA}: proceed")
        elif near_b:
            reasons.append(f"beta_min = {beta_min:.4f} is within {BETA_MATCH} of {PATH_B_BETA}: investigate")
        else:
            reasons.append(f"beta_min = {beta_min:.4f} is near neither {PATH_A_BETA} nor {PATH_B_BETA}: "
                           f"investigate")
    # Where an exact fit sits on the grid is the tie the first reason names: its edges are not findings either.
    for axis_name, e in ({} if exact_min else edges).items():
        reasons.append(f"the minimum lies on the {e['edge']} {axis_name} edge of the grid ({axis_name} = "
                       f"{e['value']:.6g}): {axis_name}_min is an edge artifact, not a located minimum")
    if monotone_beta and nb > 2:
        reasons.append("the beta profile is monotonic across the whole grid: the data do not pin beta here")
    if at_min and not exact_min:
        reasons.append(f"{len(at_min)} parameters sit on bounds at the minimum ({', '.join(at_min)}): "
                       f"the optimum is set by the bounds, not by the data")
    costs = record.get("bound_costs_at_min") or {}
    if costs and not exact_min:
        bounds = record.get("config", {}).get("bounds", {})
        key, value = max(costs.items(), key=lambda kv: abs(kv[1]))
        name, side = key.rsplit(".", 1)
        limit = bounds.get(name, [None, None])[0 if side == "lower" else 1]
        relation = ">=" if side == "lower" else "<="
        span = np.diff(bounds.get(name, [0.0, 0.0]))[0]
        reasons.append(f"the optimum is held hardest by {name} {relation} {limit:g}, worth {value:+.3g} chi2 per "
                       f"unit ({value * span:+.3g} per full range of that bound)" if limit is not None else
                       f"the optimum is held hardest by the {side} bound of {name} ({value:+.3g} per unit)")
    slopes = record.get("dchi2_dbeta")
    # An exact fit's edge slope is rounding too: its edges are not findings (above).
    if slopes is not None and edges.get("beta") and not exact_min:
        slope_min = float(np.asarray(slopes, float)[i, j])
        # A slope that would move chi2_min by less than its rounding across the whole beta range says nothing
        # about what lies past the edge (a flat profile's slope is its gradient's rounding, of either sign).
        flat_slope = abs(slope_min) * abs(float(beta[-1] - beta[0])) <= FLAT_SLOPE_RTOL * max(abs(chi2_min), 1.0)
        if flat_slope:
            reasons.append(f"at the beta edge dchi2/dbeta = {slope_min:+.4g} is rounding: across the whole beta range "
                           f"it would move chi2_min by less than {FLAT_SLOPE_RTOL:g} of itself")
        else:
            reasons.append(f"at the beta edge chi2_min still changes at dchi2/dbeta = {slope_min:+.4g}: a wider beta "
                           f"range would lower it further" if (slope_min < 0) == (edges["beta"]["edge"] == "upper")
                           else f"at the beta edge dchi2/dbeta = {slope_min:+.4g} points back into the grid")
    if nb > 1 and profile_span <= 1.0:
        reasons.append(f"chi2_min varies by only {chi2_text(profile_span, '.3g')} across beta (<= 1): beta is not "
                       f"identifiable from these data on this grid")
    flat = 0
    if degeneracy:
        eig = np.abs(np.asarray(degeneracy, float))
        flat = int(np.sum(eig < 1e-8 * eig.max())) if eig.max() > 0 else eig.size
        if flat:
            reasons.append(f"{flat} of the {eig.size} free parameters at the minimum are flat directions "
                           f"(Hessian eigenvalue < 1e-8 of the largest): they are degenerate")
    if not_converged:
        reasons.append(f"{len(not_converged)} grid points are not certified converged")
    else:
        reasons.append("every grid point's fit is certified converged")
    if bumps:
        reasons.append(f"{len(bumps)} fit-noise bumps remain in the 1-D profiles")
    reasons.append(f"beta_min - Golden Loop beta = {golden['offset']:+.4f} ({golden['offset_percent']:+.2f} %)"
                   if not exact_min else f"no offset from the Golden Loop beta = {GOLDEN_LOOP_BETA:.4f} is measured: "
                   f"beta_min is a rounding tie among exact fits")

    identifiability = beta_identifiability(record, chi2, beta)
    return {
        "identifiability": identifiability,
        "minimum": best,
        "chi2_min": chi2_min,
        "chi2_min_grid": float(chi2[i, j]),
        "edge_minimum": edges,
        "profile_beta": prof_beta,
        "profile_w": prof_w,
        "contours": contour_regions(beta, w, delta),
        "bound_fraction": bound_fraction,
        "at_bounds_at_minimum": at_min,
        "not_converged": not_converged,
        "profile_bumps": bumps,
        "golden_loop": golden,
        "beta_profile_monotonic": monotone_beta,
        "degeneracy": degeneracy,
        # Hessian eigenvalues at the minimum below 1e-8 of the largest (all of them if every one is 0).
        "flat_directions": flat,
        "verdict": {"path": path, "reasons": reasons, "chi2_min": chi2_min, "beta_min": beta_min,
                    "w_min": best["w"]},
    }


def beta_identifiability(record: dict, chi2, beta) -> dict:
    """Along the beta profile (best w per beta): spread of S* and C_g*, and beta's curvature.

    A coefficient of variation near zero means the profiled constant does not
    change with beta (it carries no information on beta); a non-positive
    curvature of chi^2_min in beta means beta is not constrained at that point.
    """
    rows = np.arange(chi2.shape[0])
    cols = np.nanargmin(chi2, axis=1)
    out: dict[str, Any] = {"beta": [float(b) for b in beta], "w_at_profile": [float(record["w"][j]) for j in cols]}
    for key in ("S", "C_g"):
        if key in record:
            values = np.asarray(record[key], float)[rows, cols]
            out[key] = values.tolist()
            out[f"cv_{key}"] = float(np.std(values) / abs(np.mean(values))) if np.mean(values) else None
    if "beta_curvature" in record:
        curv = np.asarray(record["beta_curvature"], float)[rows, cols]
        # The curvature is a difference of large terms, known to its rounding uncertainty only: a value
        # inside it is zero (beta not constrained), whatever sign the last bits gave it.
        unc = (np.asarray(record["beta_curvature_uncertainty"], float)[rows, cols]
               if "beta_curvature_uncertainty" in record else np.zeros_like(curv))
        # A profile that is 0 to rounding at every beta is flat, whatever the Hessian's Schur complement says:
        # with several flat directions that cancels beyond its estimated rounding (up to 30x, measured).
        exact_profile = is_exact_chi2(float(np.nanmax(np.abs(chi2[rows, cols]))))
        resolved = (curv > unc) & (not exact_profile)
        out["profile_exact"] = exact_profile
        out["beta_curvature"] = curv.tolist()
        out["beta_curvature_uncertainty"] = unc.tolist()
        out["sigma_beta"] = [float(np.sqrt(2.0 / c)) if ok else None for c, ok in zip(curv, resolved, strict=True)]
        k = int(np.nanargmin(chi2[rows, cols]))
        out["beta_constrained_at_minimum"] = bool(resolved[k])
    return out
