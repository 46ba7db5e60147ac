"""Readable text tables for fit and scan results."""

from __future__ import annotations


def fit_table(record: dict) -> str:
    lines = [
        f"fit at beta = {record['beta']:.6g}, w = {record['w']:.6g}, lambda = {record['lam']:.6g} "
        f"({record['numerics']} numerics, method {record['config']['method']})",
        f"  chi2 = {record['chi2']:.10g}    S* = {record['S']:.8g}",
    ]
    bounds = record["bounds"]
    lines.append(f"  {'parameter':<10}{'value':>14}{'lower':>10}{'upper':>10}  bound")
    for name, value in zip(record["param_names"], record["params"]):
        lo, hi = bounds[name]
        side = record["bound_side"].get(name, "")
        lines.append(f"  {name:<10}{value:>14.8g}{lo:>10.4g}{hi:>10.4g}  {side}")
    leptons = [n.split(".")[0] for n in record["param_names"][::3]]
    lines.append(f"  {'lepton':<10}{'E_total':>14}{'mass model':>14}{'pull':>14}")
    for lep, E, m, p in zip(leptons, record["energies"]["E_total"], record["masses"], record["pulls"]):
        lines.append(f"  {lep:<10}{E:>14.8g}{m:>14.8g}{p:>14.6g}")
    c = record["convergence"]
    starts = len(c["chi2_starts"])
    lines.append(
        f"  converged: {c['converged']}  (projected gradient {c['projected_gradient_rel']:.2e} of chi2; "
        f"{c['starts_within_0.1']}/{starts} starts within dchi2 <= 0.1)"
    )
    eig = ", ".join(f"{v:.3g}" for v in c["hessian_eigenvalues_free"]) or "none (all parameters on bounds)"
    lines.append(f"  Hessian eigenvalues of free parameters: {eig}")
    if "de" in record:
        d = record["de"]
        lines.append(f"  differential evolution: chi2 = {d['chi2']:.10g} after {d['generations']} generations "
                     f"(own criterion met: {d['converged']})")
    t = record.get("timings", {})
    if t:
        lines.append("  time: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    return "\n".join(lines)
