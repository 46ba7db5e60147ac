"""Profile interval ends by refitting (scans/intervals.py), against analytic profiles and independent fits."""

import numpy as np
import pytest

import qfdjax
from qfdjax.scans.surface import profile_1d
from qfdjax.scans.intervals import refine_intervals


def _surface(B, W):
    # Curved in both axes (quartic in beta, log-quadratic in w) and coupled, so that linear
    # interpolation across a grid cell misses the crossing by a wide margin.
    return 50.0 * (B - 3.1) ** 4 * 1e3 + 30.0 * np.log(W / 0.02) ** 2 + 5.0 * (B - 3.1) * np.log(W / 0.02)


def _gradient(B, W):
    lw = np.log(W / 0.02)
    return 200.0 * (B - 3.1) ** 3 * 1e3 + 5.0 * lw, (60.0 * lw + 5.0 * (B - 3.1)) / W


def _hessian(B, W):
    lw = np.log(W / 0.02)
    h_bb = 600.0 * (B - 3.1) ** 2 * 1e3
    h_bw = 5.0 / W
    h_ww = (60.0 - 60.0 * lw - 5.0 * (B - 3.1)) / W**2
    return np.stack([np.stack([h_bb, h_bw], -1), np.stack([h_bw, h_ww], -1)], -2)


def test_root_finding_finds_the_analytic_crossings():
    beta = np.linspace(2.9, 3.3, 9)
    w = np.geomspace(0.005, 0.08, 9)
    B, W = np.meshgrid(beta, w, indexing="ij")
    chi2 = _surface(B, W)
    slopes = _gradient(B, W)
    calls = []

    def evaluate(points):
        calls.append(len(points))
        g = _gradient(points[:, 0], points[:, 1])
        return _surface(points[:, 0], points[:, 1]), g[0], g[1], _hessian(points[:, 0], points[:, 1])

    found = refine_intervals(evaluate, beta, w, chi2, slopes, atol=1e-6)
    # The profiles minimise over the other axis continuously (not only over its grid values):
    # dense 1-D minimisations are the independent oracle.
    dense_b = np.linspace(beta[0], beta[-1], 2_000_001)
    dense_w = np.geomspace(w[0], w[-1], 2_000_001)

    def profile_beta(x):
        return np.min(_surface(x, dense_w))

    def profile_w(y):
        return np.min(_surface(dense_b, y))

    # The minimum lies between nodes (d = beta - 3.1 = +-1.44e-3, chi2 = -2.17e-7 below the best node).
    ref = found["reference_chi2"]
    assert ref == pytest.approx(-(5.0 / 48.0) * (5.0 / 12.0) / 2e5, abs=2e-9) and ref < chi2.min()
    assert found["minimum"]["chi2"] == ref and abs(abs(found["minimum"]["beta"] - 3.1) - 1.443e-3) < 1e-4
    for level in ("1", "4"):
        for side in ("lower", "upper"):
            x = found["beta"][level][side]
            assert found["beta"][level][f"{side}_converged"]
            assert profile_beta(x) - ref == pytest.approx(float(level), abs=1e-5)
            y = found["w"][level][side]
            assert profile_w(y) - ref == pytest.approx(float(level), abs=1e-5)
    assert len(calls) <= 200
    # Linear interpolation of the grid profile is far off on this curved profile.
    linear = profile_1d(beta, chi2.min(axis=1))["interval"]
    assert abs(linear[1] - found["beta"]["1"]["upper"]) > 0.05 * abs(found["beta"]["1"]["upper"] - 3.1)


def test_scan_interval_ends_agree_with_independent_refits(tmp_path):
    """The seed's corner: the w end from linear interpolation is ~17 % too far from the minimum."""
    config = qfdjax.ScanConfig(beta=(3.2, 3.25, 2), w=(0.03, 0.05, 3), fit=qfdjax.FitConfig(starts=4))
    record = qfdjax.run_scan(config, tmp_path / "s", progress=False)
    chi2 = np.array(record["chi2"])
    w_axis = np.array(record["w"])
    ends = record["profile_intervals"]["w"]["1"]
    w_min = w_axis[np.argmin(chi2.min(axis=0))]
    distance = w_min - ends["lower"]
    assert distance > 0 and ends["lower_converged"]

    def independent(w):
        # qfdjax.fit is another code path (one point, its own kernel bucket); min over the grid's betas.
        return min(qfdjax.fit(b, w, config=qfdjax.FitConfig(starts=4))["chi2"] for b in record["beta"]) - chi2.min()

    assert independent(w_min - 0.98 * distance) < 1.0 < independent(w_min - 1.02 * distance)
    linear = record["analysis"]["profile_w"]
    assert linear["interval_method"] == "refit" and linear["interval"][0] == ends["lower"]
    interpolated = profile_1d(w_axis, chi2.min(axis=0), log_axis=True)["interval"][0]
    assert (w_min - interpolated) / distance > 1.05


def test_level_brackets_walk_out_from_the_start():
    from qfdjax.fitting.levels import level_brackets

    delta = np.array([5.0, 2.0, 0.5, 0.0, 0.2, 0.9, 3.0])
    assert level_brackets(delta, 1.0) == [("lower", 2, 1), ("upper", 5, 6)]
    # From another start, and a level one side never reaches.
    assert level_brackets(delta, 1.0, start=4) == [("lower", 2, 1), ("upper", 5, 6)]
    assert level_brackets(delta, 4.0) == [("lower", 1, 0)]


def test_intervals_are_measured_from_the_refitted_minimum_between_nodes(tmp_path):
    """e and mu with g-factors: the w profile's minimum lies between grid nodes, far below the best node.

    Measured from the best node (as before issue 20), the Delta chi2 = 1 'interval' was a Delta chi2 ~ 163
    region 12.8x too wide; now the minimum is refitted first and its own chi2 is the reference, and
    independent single fits at the ends give Delta chi2 = 1 and 4 from it."""
    from qfdjax.fitting.params import ParameterSpace

    config = qfdjax.ScanConfig(beta=(1.5, 3.4, 3), w=(0.05, 0.5, 4), leptons=("e", "mu"),
                               observables=("mass", "g"), fit=qfdjax.FitConfig(starts=4))
    record = qfdjax.run_scan(config, tmp_path / "s", progress=False)
    found = record["profile_intervals"]
    m = found["minimum"]
    assert m["converged"] and m["chi2"] < np.min(record["chi2"]) - 100.0  # far below the best node
    assert record["analysis"]["chi2_min"] == m["chi2"] and record["analysis"]["minimum"]["method"] == "refit"
    space = ParameterSpace.seed(("e", "mu"))

    def independent(w):
        return qfdjax.fit(m["beta"], w, space=space, observables=("mass", "g"),
                          config=qfdjax.FitConfig(starts=4))["chi2"] - m["chi2"]

    assert abs(independent(m["w"])) < 1e-3
    for level in ("1", "4"):
        ends = found["w"][level]
        assert ends["lower_converged"] and ends["upper_converged"]
        for side in ("lower", "upper"):
            assert independent(ends[side]) == pytest.approx(float(level), abs=2e-3)
    # The analysis reports the refitted minimum with its own chi2, and Delta chi2 from it.
    w_prof = record["analysis"]["profile_w"]
    assert w_prof["min_refined"] == m["w"] and min(w_prof["delta_chi2"]) > 0
