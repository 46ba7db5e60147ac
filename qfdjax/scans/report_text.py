"""Readable text tables for fit and scan results."""

from __future__ import annotations

from ..fitting.certificate import chi2_text, is_exact_chi2


def _with_uncertainty(value: float, uncertainty: float) -> str:
    """value +- uncertainty with no digit printed below the uncertainty's first."""
    import math

    if not uncertainty or not math.isfinite(uncertainty) or uncertainty <= 0:
        return f"{value:.4g}"
    digits = max(0, -int(math.floor(math.log10(uncertainty))))
    text = f"{value:.{digits}f}"
    # A value that rounds to zero at these digits is zero, not "-0".
    return f"{'0' if float(text) == 0 else text} +- {uncertainty:.1g} (rounding)"


def fit_table(record: dict) -> str:
    lines = [
        f"fit at beta = {record['beta']:.6g}, w = {record['w']:.6g}, lambda = {record['lam']:.6g} "
        f"({record['numerics']} numerics, method {record['config']['method']})",
        f"  chi2 = {chi2_text(record['chi2'], '.10g')}    S* = {record['S']:.8g}"
        + (f"    (mass {record['chi2_mass']:.6g} + g {record['chi2_g']:.6g};  C_g* = {record['C_g']:.6g})"
           if "chi2_g" in record else ""),
    ]
    bounds = record["bounds"]
    lines.append(f"  {'parameter':<10}{'value':>14}{'lower':>10}{'upper':>10}  bound")
    for name, value in zip(record["param_names"], record["params"], strict=True):
        lo, hi = bounds[name]
        side = record["bound_side"].get(name, "")
        lines.append(f"  {name:<10}{value:>14.8g}{lo:>10.4g}{hi:>10.4g}  {side}")
    leptons = [n.split(".")[0] for n in record["param_names"][::3]]
    g_model = record.get("g_model")
    lines.append(f"  {'lepton':<10}{'E_total':>14}{'mass model':>14}{'mass pull':>16}"
                 + (f"{'g model':>14}" if g_model else ""))
    # At an exact fit every pull is below sqrt(certificate.EXACT_CHI2) and its digits are the residuals' rounding.
    exact = is_exact_chi2(record["chi2"])
    for k, (lep, E, m, p) in enumerate(zip(leptons, record["energies"]["E_total"], record["masses"],
                                           record["pulls"], strict=False)):
        pull = f"{'0 to rounding' if exact else format(p, '.6g'):>16}"
        lines.append(f"  {lep:<10}{E:>14.8g}{m:>14.8g}{pull}" + (f"{g_model[k]:>14.8g}" if g_model else ""))
    c = record["convergence"]
    starts = len(c["chi2_starts"])
    lines.append(
        f"  converged: {c['converged']}  (EDM {c['edm']:.2e}, projected gradient {c['projected_gradient_rel']:.2e} "
        f"of chi2; {c['starts_within_0.1']}/{starts} starts within dchi2 <= 0.1)"
        + (f"; not certified: {c['uncertified_reason']}" if c.get("uncertified_reason") else "")
    )
    if c.get("finite_result") is False:
        lines.append("  NOT VALID: chi2, S* or an energy is not finite at this point")
    eig = ", ".join(f"{v:.3g}" for v in c["hessian_eigenvalues_free"]) or "none (all parameters on bounds)"
    lines.append(f"  Hessian eigenvalues of free parameters: {eig}")
    if "de" in record:
        d = record["de"]
        lines.append(f"  differential evolution: chi2 = {d['chi2']:.10g} after {d['generations']} generations "
                     f"(own criterion met: {d['converged']})")
    costs = record.get("bound_costs")
    if costs:
        lines.append("  bound costs dchi2_min/d(bound): " + ", ".join(
            f"{k} {v:+.3g}" for k, v in sorted(costs.items(), key=lambda kv: -abs(kv[1]))))
    if "dchi2_dbeta" in record:
        # Stable to ~4e-5 relative under another chunking or device count (tests/test_guarantees.py).
        # chi2_min >= 0 everywhere: where it is 0 to rounding, so are its slopes.
        d_beta, d_w = ("0 to rounding" if exact else format(record[key], ".4g") for key in ("dchi2_dbeta", "dchi2_dw"))
        lines.append(f"  profile slopes: dchi2_min/dbeta = {d_beta}, dchi2_min/dw = {d_w}")
    ident = record.get("identifiability")
    if ident:
        if "summary" in ident:
            lines.append(f"  identifiability: {ident['summary']}")
        sigma = ident["sigma_beta"]
        unc = ident.get("beta_profile_curvature_uncertainty", 0.0)
        lines.append(f"  beta: profile curvature d2chi2/dbeta2 = {_with_uncertainty(ident['beta_profile_curvature'], unc)}"
                     + (f", sigma_beta = {sigma:.4g}" if sigma is not None else
                        " (not positive beyond its rounding: beta is not constrained here)"))
    if record.get("errors"):
        lines.append("  HESSE errors: " + ", ".join(f"{k} {v:.4g}" for k, v in record["errors"].items()))
    elif record.get("hessian_singular"):
        lines.append("  HESSE errors: none (Hessian of the free parameters is singular; flat, unit-norm in unit-box "
                     "coordinates: "
                     + "; ".join(record.get("flat_combinations", [])) + ")")
    for name, (lo, hi) in record.get("minos", {}).items():
        d = record["minos_details"][name]
        cut = [s for s in ("lower", "upper") if d[f"{s}_cut_by_bound"]]
        lines.append(f"  MINOS {name}: {lo:+.4g} / {hi:+.4g}" + (f" (cut by the {' and '.join(cut)} bound)" if cut else "")
                     + ("" if d.get("valid", True) else " NOT VALID: a refit was not certified converged"))
    free = record.get("free_globals")
    if free:
        where = ", ".join(f"{k} on its {v} bound" for k, v in free["at_bound"].items()) or "inside the bounds"
        if free.get("converged"):
            lines.append(f"  profile minimum over {','.join(free['free'])}: beta = {record['beta']:.6g}, "
                         f"w = {record['w']:.6g} ({where}; converged after {free['iterations']} Newton/gradient "
                         f"steps)")
        else:
            slopes = ", ".join(f"dchi2/d{k} = {v:.4g}" for k, v in free.get("projected_slope", {}).items())
            lines.append(f"  NOT CONVERGED over {','.join(free['free'])} ({free.get('stop', 'stopped')} after "
                         f"{free['iterations']} steps): last point beta = {record['beta']:.6g}, "
                         f"w = {record['w']:.6g} ({where}); remaining slope {slopes}")
    pp = record.get("param_profile")
    if pp:
        if pp.get("interval") is not None:
            lo, hi = pp["interval"]
            shape = f"interval [{lo:.7g}, {hi:.7g}]" if None not in (lo, hi) else "interval open"
        else:
            shape = "contour closed" if pp.get("contour_closed") else "contour open (it leaves the profiled range)"
        lines.append(f"  parameter profile at Delta chi2 = {pp['level']:.4g}: {shape}; {', '.join(pp['files'])}")
    t = record.get("timings", {})
    if t:
        lines.append("  time: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    return "\n".join(lines)


def _team_text(processes: dict) -> str:
    if processes.get("count", 1) == 1:
        return ""
    shares = ", ".join(f"{p['fitted_points']}" for p in processes["per_process"])
    return f" in {processes['count']} processes (points fitted: {shares})"


def scan_summary(record) -> str:
    a = record["analysis"]
    v = a["verdict"]
    beta, w = record["beta"], record["w"]
    m = a["minimum"]
    lines = [
        f"scan: {len(beta)} x {len(w)} points, beta {beta[0]:.4g}..{beta[-1]:.4g}, w {w[0]:.4g}..{w[-1]:.4g} "
        f"({record['config']['w_spacing']}), {record['config']['numerics']} numerics, "
        f"method {record['config']['fit']['method']}",
        (f"  chi2_min = {chi2_text(a['chi2_min'], '.10g')} at beta = {m['beta']:.7g}, w = {m['w']:.7g} (refitted"
         + ("" if m.get("converged", True) else ", NOT converged")
         + f"; best grid node chi2 = {chi2_text(a.get('chi2_min_grid', a['chi2_min']), '.10g')} at beta = "
         f"{beta[m['index'][0]]:.6g}, w = {w[m['index'][1]]:.6g})"
         if m.get("method") == "refit" else
         f"  chi2_min = {chi2_text(a['chi2_min'], '.10g')} at beta = {beta[m['index'][0]]:.6g}, "
         f"w = {w[m['index'][1]]:.6g}"
         + (f"  (quadratic interpolation: beta = {m['beta']:.6g}, w = {m['w']:.6g}, chi2 = {m['chi2']:.8g}; not a fit)"
            if m["refined"] else "")),
    ]
    pb, pw = a["profile_beta"], a["profile_w"]
    for label, p in (("beta", pb), ("w", pw)):
        texts = []
        for level, key in ((1, "interval"), (4, "interval_4")):
            lo, hi = p.get(key) or (None, None)
            texts.append(f"Delta chi2 = {level}: " + (f"[{lo:.7g}, {hi:.7g}]" if lo is not None and hi is not None else
                         f"open ({'lower' if lo is None else f'{lo:.7g}'} .. {'upper' if hi is None else f'{hi:.7g}'})"))
        how = "refitted" if p.get("interval_method") == "refit" else "interpolated"
        ends = (record.get("profile_intervals") or {}).get(label, {}).get("1", {})
        jumps = [f"{side} end at a jump of the profile" if ends.get(f"{side}_jump", True) else
                 f"{side} end not converged" for side in ("lower", "upper") if ends.get(f"{side}_converged") is False]
        how = "; ".join([how] + jumps)
        # The edge is the best grid node's: said of the node, since a refit may move the minimum off it.
        edge = f", on the {p['edge']} edge" if p["edge"] else ""
        where = (f"min at {p['min_refined']:.7g} (refitted; best node {p['min_at']:.6g}{edge})"
                 if p.get("min_refined_method") == "refit" and p["min_refined"] != p["min_at"] else
                 f"min at {p['min_at']:.6g}" + (f" (on the {p['edge']} edge)" if p["edge"] else ""))
        lines.append(f"  profile in {label}: {where}; {'; '.join(texts)} ({how})")
    conv = record["convergence"]
    n_conv = sum(sum(row) for row in conv["converged"])
    lines.append(f"  converged points: {n_conv}/{len(beta) * len(w)}; neighbour refit improved "
                 f"{conv['neighbour_refit']['improved_points']} points")
    ident = a.get("identifiability", {})
    if ident:
        parts = [f"CV of S* {ident['cv_S']:.3g}"] if ident.get("cv_S") is not None else []
        if ident.get("cv_C_g") is not None:
            parts.append(f"CV of C_g* {ident['cv_C_g']:.3g}")
        if "beta_constrained_at_minimum" in ident:
            parts.append("beta constrained at the minimum" if ident["beta_constrained_at_minimum"]
                         else "beta NOT constrained (chi2_min is 0 to rounding at every beta)" if ident.get("profile_exact")
                         else "beta NOT constrained at the minimum (curvature not positive beyond its rounding uncertainty)")
        lines.append("  identifiability along the beta profile: " + "; ".join(parts))
    lines.append(f"  VERDICT: Path {v['path']}")
    for reason in v["reasons"]:
        lines.append(f"   - {reason}")
    t = record.get("timings", {})
    if "merge_s" in t:
        parts = t.get("parts_scan_s", [])
        lines.append(f"  time: merge {t['merge_s']:.2f} s (neighbour refit and interval ends of the merged grid); the {len(parts)} parts' "
                     f"scans took {', '.join(f'{p:.2f}' for p in parts)} s")
    elif "scan_s" in t:
        lines.append(f"  time: {t['scan_s']:.2f} s (fits {t.get('fit_s', 0):.2f} s, diagnostics and refit "
                     f"{t.get('diagnostics_s', 0):.2f} s" + (f", interval ends {t['intervals_s']:.2f} s" if "intervals_s" in t else "")
                     + f") on {record['device']['count']} "
                     f"{record['device']['platform']} device(s)" + _team_text(record.get("processes", {})))
    return "\n".join(lines)
