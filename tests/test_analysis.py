"""Analysis on constructed chi^2 surfaces, and the verdict's decision tree."""

import numpy as np
import pytest

from qfdjax.scans.analysis import analyse_scan
from qfdjax.scans.surface import profile_1d, refine_minimum

NAMES = ["e.R_c", "e.U", "e.A", "mu.R_c", "mu.U", "mu.A", "tau.R_c", "tau.U", "tau.A"]


def synthetic_record(chi2_fn, beta, w, at_bounds=None, converged=None):
    B, W = np.meshgrid(beta, w, indexing="ij")
    chi2 = chi2_fn(B, W)
    n = chi2.size
    return {
        "beta": beta.tolist(), "w": w.tolist(), "chi2": chi2.tolist(), "param_names": NAMES,
        "params": np.full(chi2.shape + (9,), 0.5).tolist(),
        "config": {"w_spacing": "log"},
        "convergence": {"at_bounds": at_bounds or [[] for _ in range(n)],
                        "converged": (converged if converged is not None else np.ones(chi2.shape, bool)).tolist()},
    }


def quadratic(beta0, w0, c0, sb=0.02, sw=0.3):
    return lambda B, W: c0 + ((B - beta0) / sb) ** 2 + ((np.log(W) - np.log(w0)) / sw) ** 2


BETA = np.linspace(2.95, 3.25, 31)
W = np.geomspace(0.005, 0.05, 25)


def test_quadratic_surface_minimum_intervals_and_contours():
    rec = synthetic_record(quadratic(3.1037, 0.0163, 2.0), BETA, W)
    a = analyse_scan(rec)
    m = a["minimum"]
    # A quadratic in (beta, log w) is recovered exactly by the local fit.
    assert m["refined"] and m["beta"] == pytest.approx(3.1037, abs=1e-9)
    assert m["w"] == pytest.approx(0.0163, rel=1e-9)
    lo, hi = a["profile_beta"]["interval"]
    # Delta chi^2 = 1 at beta0 -+ sb (linear interpolation of a parabola: within a grid step).
    assert lo == pytest.approx(3.1037 - 0.02, abs=3e-3) and hi == pytest.approx(3.1037 + 0.02, abs=3e-3)
    assert a["profile_beta"]["closed"] and a["profile_w"]["closed"]
    c = a["contours"]
    assert set(c) == {"2.3", "6.18", "11.83"}
    assert all(v["closed_on_grid"] for v in c.values())
    assert c["2.3"]["points"] < c["6.18"]["points"] < c["11.83"]["points"]
    assert not a["edge_minimum"]
    assert a["verdict"]["path"] == "A"


def test_refine_minimum_and_profile_helpers():
    x = np.linspace(0, 1, 11)
    best = refine_minimum(x, np.geomspace(1, 10, 7), (x[:, None] - 0.43) ** 2 + np.zeros((11, 7)) +
                          (np.log(np.geomspace(1, 10, 7))[None, :] - np.log(3.0)) ** 2, log_y=True)
    assert best["beta"] == pytest.approx(0.43, abs=1e-9) and best["w"] == pytest.approx(3.0, rel=1e-9)
    p = profile_1d(x, 100 * (x - 0.43) ** 2)
    assert p["min_refined"] == pytest.approx(0.43, abs=1e-9)
    assert p["interval"][0] == pytest.approx(0.33, abs=0.01) and p["interval"][1] == pytest.approx(0.53, abs=0.01)
    edge = profile_1d(x, -x)
    assert edge["edge"] == "upper" and not edge["closed"]


def test_verdict_paths():
    path_a = analyse_scan(synthetic_record(quadratic(3.10, 0.015, 1.5), BETA, W))["verdict"]
    path_b = analyse_scan(synthetic_record(quadratic(3.20, 0.015, 1.5), BETA, W))["verdict"]
    other = analyse_scan(synthetic_record(quadratic(3.00, 0.015, 1.5), BETA, W))["verdict"]
    bounds = [["mu.R_c", "tau.A"]] * (BETA.size * W.size)
    path_c = analyse_scan(synthetic_record(lambda B, Wg: 1.6e7 - 1e5 * B + 0 * Wg, BETA, W, at_bounds=bounds))
    assert path_a["path"] == "A" and "proceed" in " ".join(path_a["reasons"])
    assert path_b["path"] == "B" and "investigate" in " ".join(path_b["reasons"])
    assert other["path"] == "B" and "near neither" in " ".join(other["reasons"])
    v = path_c["verdict"]
    assert v["path"] == "C"
    text = " ".join(v["reasons"])
    assert "not O(1)" in text and "upper beta edge" in text and "monotonic" in text
    assert "mu.R_c" in text and "on bounds" in text
    assert path_c["edge_minimum"]["beta"]["edge"] == "upper"
    assert path_c["bound_fraction"]["mu.R_c"] == 1.0 and path_c["bound_fraction"]["e.U"] == 0.0
    assert path_c["golden_loop"]["offset"] == pytest.approx(3.25 - 3.043233053)


def test_a_flat_beta_profile_is_never_path_a():
    """Every fit exact (chi2 ~ 1e-24, its minimum a rounding tie that may land at beta = 3.1): beta is not
    located, so the verdict cannot proceed on it; nor on a minimum at the grid's beta edge."""
    rng = np.random.default_rng(0)
    tie = synthetic_record(lambda B, Wg: 1e-24 * (1 + rng.uniform(size=B.shape)) + 1e-25 * (np.abs(B - 3.1) > 1e-9),
                           BETA, W, at_bounds=[["tau.U"]] * (BETA.size * W.size))
    tie["bound_costs_at_min"] = {"tau.U.upper": -2.3e-8}
    v = analyse_scan(tie)["verdict"]
    assert abs(v["beta_min"] - 3.1) <= 0.05 and v["path"] == "B"  # near 3.1: Path A before this check
    text = " ".join(v["reasons"])
    assert "not a located minimum" in text and "proceed" not in text
    # The exact fit's rounding is said to be zero, and no bound is said to hold an optimum that chi^2 >= 0
    # already pins: its active bounds and their multipliers are rounding too.
    assert "chi2_min = 0 to rounding" in text and "rounding tie" in text and "e-2" not in text, text
    assert "bounds" not in text and "held hardest" not in text, text
    assert "rounding tie among exact fits" in text and "Golden Loop beta =" in text and "%" not in text, text
    # Nor is its place on the grid: an exact tie won by an edge node names no edge and no edge slope.
    corner = synthetic_record(lambda B, Wg: 1e-24 * (1 + rng.uniform(size=B.shape)) - 9e-25 * (B == B.max())
                              * (Wg == Wg.max()), BETA, W)
    corner["dchi2_dbeta"] = np.full((BETA.size, W.size), 5.8e-23).tolist()
    corner_verdict = analyse_scan(corner)["verdict"]
    corner_text = " ".join(corner_verdict["reasons"])
    assert corner_verdict["beta_min"] == BETA[-1] and "rounding tie" in corner_text, corner_text
    assert "edge of the grid" not in corner_text and "dchi2/dbeta" not in corner_text, corner_text
    # A profile at its rounding everywhere never constrains beta, whatever curvature its Hessian shows.
    tie["beta_curvature"] = np.full((BETA.size, W.size), 500.0).tolist()
    tie["beta_curvature_uncertainty"] = np.full((BETA.size, W.size), 10.0).tolist()
    ident = analyse_scan(tie)["identifiability"]
    assert ident["profile_exact"] and not ident["beta_constrained_at_minimum"]
    # A profile flat to its rounding at chi^2 ~ 9e7 (one shared A and U): the edge slope's sign is noise.
    flat = synthetic_record(lambda B, Wg: 8.8e7 + 1e-8 * (B - 2.95) + 0 * Wg, BETA, W)
    flat["dchi2_dbeta"] = np.full((BETA.size, W.size), 4.8e-10).tolist()
    flat_text = " ".join(analyse_scan(flat)["verdict"]["reasons"])
    assert "is rounding" in flat_text and "wider beta range" not in flat_text, flat_text
    flat["dchi2_dbeta"] = np.full((BETA.size, W.size), 1e3).tolist()
    assert "wider beta range would lower it" in " ".join(analyse_scan(flat)["verdict"]["reasons"])
    edge = analyse_scan(synthetic_record(quadratic(3.06, 0.015, 1.0), np.linspace(3.08, 3.3, 12), W))["verdict"]
    assert edge["path"] == "B" and "not a located minimum" in " ".join(edge["reasons"])


def test_unconverged_points_and_bumps_are_flagged():
    conv = np.ones((BETA.size, W.size), bool)
    conv[3, 4] = False

    def bumpy(B, Wg):
        base = quadratic(3.1, 0.015, 1.0)(B, Wg)
        return base + 50.0 * (np.abs(B - BETA[20]) < 1e-12)

    a = analyse_scan(synthetic_record(bumpy, BETA, W, converged=conv))
    assert a["not_converged"] == [[float(BETA[3]), float(W[4])]]
    assert {"axis": "beta", "value": float(BETA[20])} in a["profile_bumps"]
    assert any("not certified" in r for r in a["verdict"]["reasons"])
