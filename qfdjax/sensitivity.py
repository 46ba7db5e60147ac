"""The seed's sensitivity study, and the resolution tests it could not run.

At the seed's reference point (beta, w) = (3.1, 0.015):
  * optimiser budget: differential evolution with max_iter 50/100/200/500 against
    the converged gradient fit;
  * 1-D sweeps in beta (3.00..3.20, 9 points) and w (0.010..0.025, 6 points);
  * resolution of the seed's numerics: dr_coarse, dr_fine_factor, N_theta, and the
    domain edge r_max, each moving beta_min by how much (pass: < 0.01);
  * exact vs reference numerics on the same sweeps: how much of the seed's
    landscape is quadrature error.
Every row is a batch of converged fits (one compiled call per numerics setting).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .fitting.resources import check_fit_memory

from .scans.surface import profile_1d
from .model.constants import lambda_from_eta
from .fitting.fit import FitConfig, fit_points
from .model.quadrature import SeedGridSpec

BETA_REF, W_REF = 3.1, 0.015
BETA_SWEEP = np.linspace(3.00, 3.20, 9)
W_SWEEP = np.linspace(0.010, 0.025, 6)
DE_BUDGETS = (50, 100, 200, 500)
RESOLUTION = {
    "dr_coarse": (0.01, 0.02, 0.03),
    "dr_fine_factor": (20, 25, 30, 40),
    "num_theta": (10, 20, 30, 40),
    "r_max": (8.0, 10.0, 12.0),
}
BETA_SHIFT_PASS = 0.01


def _beta_min(chi2):
    p = profile_1d(BETA_SWEEP, chi2)
    return p["min_refined"] if p["min_refined"] is not None else p["min_at"], p["edge"]


def beta_sweep(numerics: str, spec: SeedGridSpec, config: FitConfig, eta: float = 0.03):
    out = fit_points(BETA_SWEEP, np.full(BETA_SWEEP.size, W_REF), lambda_from_eta(BETA_SWEEP, eta),
                     numerics=numerics, config=config, spec=spec)
    beta_min, edge = _beta_min(out["chi2"])
    return {"beta": BETA_SWEEP.tolist(), "chi2": out["chi2"].tolist(), "beta_min": beta_min, "edge": edge,
            "converged": out["converged"].tolist(), "S": out["S"].tolist()}


def w_sweep(numerics: str, spec: SeedGridSpec, config: FitConfig, eta: float = 0.03):
    lam = lambda_from_eta(BETA_REF, eta)
    out = fit_points(np.full(W_SWEEP.size, BETA_REF), W_SWEEP, np.full(W_SWEEP.size, lam), numerics=numerics,
                     config=config, spec=spec)
    p = profile_1d(W_SWEEP, out["chi2"])
    return {"w": W_SWEEP.tolist(), "chi2": out["chi2"].tolist(), "w_min": p["min_at"], "edge": p["edge"],
            "converged": out["converged"].tolist()}


def optimizer_budget(numerics: str, spec: SeedGridSpec, seed: int, starts: int, budgets=DE_BUDGETS):
    lam = lambda_from_eta(BETA_REF)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    grad = fit_points(BETA_REF, W_REF, lam, numerics=numerics, config=FitConfig(starts=starts, seed=seed),
                      spec=spec)
    rows.append({"method": "gradient", "starts": starts, "chi2": float(grad["chi2"][0]),
                 "time_s": time.perf_counter() - t0})
    for budget in budgets:
        t0 = time.perf_counter()
        # tol = 0 so DE runs its whole budget, as the seed's fixed max_iter runs did.
        de = fit_points(BETA_REF, W_REF, lam, numerics=numerics, spec=spec,
                        config=FitConfig(method="de", de_maxiter=budget, de_tol=0.0, seed=seed))
        rows.append({"method": "de", "max_iter": budget, "chi2": float(de["chi2"][0]),
                     "generations": int(de["de_generations"][0]), "time_s": time.perf_counter() - t0})
    best = min(float(r["chi2"]) for r in rows)
    for r in rows:
        r["delta_chi2"] = float(r["chi2"]) - best
    return rows


def run_sensitivity(starts: int = 8, seed: int = 0, progress=print, budgets=DE_BUDGETS,
                    resolution_grid=None) -> dict:
    """The whole study; returns a JSON-ready dict.  `budgets`/`resolution_grid` shrink it for tests."""
    resolution_grid = RESOLUTION if resolution_grid is None else resolution_grid
    t_start = time.perf_counter()
    config = FitConfig(starts=starts, seed=seed)
    # The largest batch of the study: a sweep of 9 points in the seed's numerics, every start a lane.
    check_fit_memory("sensitivity", 9, starts, 9, numerics="reference")
    base = SeedGridSpec()
    result = {"reference_point": {"beta": BETA_REF, "w": W_REF}, "config": dataclasses.asdict(config)}

    progress("optimizer budget (reference numerics, as the seed ran it) ...")
    result["optimizer_budget"] = {"reference": optimizer_budget("reference", base, seed, starts, budgets),
                                  "exact": optimizer_budget("exact", base, seed, starts, budgets)}
    progress("beta and w sweeps, exact and reference numerics ...")
    sweeps = {}
    for numerics in ("exact", "reference"):
        sweeps[numerics] = {"beta": beta_sweep(numerics, base, config), "w": w_sweep(numerics, base, config)}
    result["sweeps"] = sweeps
    ex, ref = sweeps["exact"]["beta"], sweeps["reference"]["beta"]
    result["exact_vs_reference"] = {
        "beta_min_exact": ex["beta_min"], "beta_min_reference": ref["beta_min"],
        "chi2_difference": (np.array(ref["chi2"]) - np.array(ex["chi2"])).tolist(),
        "max_abs_chi2_difference": float(np.max(np.abs(np.array(ref["chi2"]) - np.array(ex["chi2"])))),
        "beta_profile_span_exact": float(np.ptp(ex["chi2"])),
        "beta_profile_span_reference": float(np.ptp(ref["chi2"])),
    }
    progress("resolution of the seed's numerics ...")
    baseline = ref["beta_min"]
    resolution = {}
    for knob, values in resolution_grid.items():
        rows = []
        for value in values:
            spec = dataclasses.replace(base, **{knob: value})
            kinds = ["reference"] + (["exact"] if knob == "r_max" else [])
            row = {"value": value}
            for name in kinds:
                sweep = ref if (name == "reference" and getattr(base, knob) == value) else \
                    beta_sweep(name, spec, config)
                row[name] = {"beta_min": sweep["beta_min"], "edge": sweep["edge"], "chi2": sweep["chi2"]}
            row["beta_min_shift"] = row["reference"]["beta_min"] - baseline
            row["pass"] = abs(row["beta_min_shift"]) < BETA_SHIFT_PASS
            # beta_min cannot move while it sits on the sweep's edge, so also report
            # how far the whole profile moves (chi^2 and its beta-slope).
            change = np.array(row["reference"]["chi2"]) - np.array(ref["chi2"])
            row["max_abs_chi2_change"] = float(np.max(np.abs(change)))
            row["profile_slope_change"] = float(np.polyfit(BETA_SWEEP, change, 1)[0])
            rows.append(row)
        # Progress only: the numbers are in the summary's table, printed once at the end.
        progress(f"  {knob}: {len(rows)} values done")
        resolution[knob] = rows
    result["resolution"] = resolution
    result["timings"] = {"total_s": time.perf_counter() - t_start}
    return result


def sensitivity_summary(result: dict) -> str:
    lines = ["optimizer budget at (beta, w) = (3.1, 0.015):"]
    for numerics, rows in result["optimizer_budget"].items():
        for r in rows:
            label = "gradient" if r["method"] == "gradient" else f"DE max_iter {r['max_iter']}"
            lines.append(f"  {numerics:<9} {label:<18} chi2 = {r['chi2']:.10g}  (+{r['delta_chi2']:.4g})  "
                         f"{r['time_s']:.2f} s")
    for numerics, sw in result["sweeps"].items():
        b, w = sw["beta"], sw["w"]
        lines.append(f"{numerics} beta sweep: beta_min = {b['beta_min']:.4f}"
                     + (f" (on {b['edge']} edge)" if b["edge"] else "")
                     + f"; w sweep: w_min = {w['w_min']:.4g}" + (f" (on {w['edge']} edge)" if w["edge"] else ""))
    e = result["exact_vs_reference"]
    lines.append(f"exact vs reference: max |chi2 difference| on the beta sweep = {e['max_abs_chi2_difference']:.4g} "
                 f"(profile spans: exact {e['beta_profile_span_exact']:.4g}, reference "
                 f"{e['beta_profile_span_reference']:.4g})")
    lines.append("resolution of the seed's numerics (beta_min shift, pass if < 0.01; max |chi2 change| of the "
                 "beta profile):")
    for knob, rows in result["resolution"].items():
        cells = ", ".join(f"{r['value']}: {r['beta_min_shift']:+.4f}{'' if r['pass'] else ' FAIL'} "
                          f"[{r['max_abs_chi2_change']:.3g}]" for r in rows)
        lines.append(f"  {knob:<15} {cells}")
    edges = [sw["beta"]["edge"] for sw in result["sweeps"].values()]
    if all(edges):
        lines.append("note: beta_min sits on the sweep's edge in both numerics, so no resolution knob can move "
                     "it; the chi^2 changes show how much each knob reshapes the landscape.")
    return "\n".join(lines)


def plot_sensitivity(result, path):
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from matplotlib.figure import Figure

    from .io import save_figure

    fig = Figure(figsize=(15, 4.3))
    axes = fig.subplots(1, 3)
    # Both numerics measured from the exact sweep's minimum: the reference numerics' offset (its
    # quadrature error) is then visible, not subtracted away.
    base = {key: float(np.min(result["sweeps"]["exact"][key]["chi2"])) for key in ("beta", "w")}
    for numerics, style in (("exact", "o-"), ("reference", "s--")):
        b = result["sweeps"][numerics]["beta"]
        axes[0].plot(b["beta"], np.asarray(b["chi2"]) - base["beta"], style, label=numerics)
        wv = result["sweeps"][numerics]["w"]
        axes[1].plot(wv["w"], np.asarray(wv["chi2"]) - base["w"], style, label=numerics)
    axes[0].set_xlabel("β (w = 0.015)")
    axes[1].set_xlabel("w (β = 3.1)")
    for ax in axes[:2]:
        ax.set_ylabel("χ² − (exact numerics' minimum)")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.legend()
    offset = result.get("exact_vs_reference", {}).get("max_abs_chi2_difference")
    quadrature = f"\nreference − exact: up to {offset:.3g} (quadrature error)" if offset is not None else ""
    axes[0].set_title("χ² along β, both numerics" + quadrature, fontsize=9)
    axes[1].set_title("χ² along w, both numerics", fontsize=9)
    axes[2].set_title("differential evolution's budget: χ² above the gradient fit", fontsize=9)
    budgets = []
    for numerics, marker in (("exact", "o"), ("reference", "s")):
        rows = [r for r in result["optimizer_budget"][numerics] if r["method"] == "de"]
        budgets += [r["max_iter"] for r in rows]
        axes[2].plot([r["max_iter"] for r in rows], [max(r["delta_chi2"], 1e-3) for r in rows], marker + "-",
                     label=f"DE, {numerics}")
    axes[2].set_xscale("log")
    axes[2].set_yscale("log")
    # The budgets themselves as ticks: log-scale minor labels ran into each other ("3×10²4×10²").
    axes[2].xaxis.set_major_locator(FixedLocator(sorted(set(budgets))))
    axes[2].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[2].xaxis.set_minor_locator(NullLocator())
    axes[2].set_xlabel("DE generations (the seed's max iter)")
    axes[2].set_ylabel("χ²(DE) − χ²(gradient)")
    axes[2].legend()
    fig.suptitle("Sensitivity at (β, w) = (3.1, 0.015)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
