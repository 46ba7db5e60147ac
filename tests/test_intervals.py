"""Profile interval ends by refitting (scans/intervals.py), against analytic profiles and independent fits."""

import numpy as np
import pytest

import qfdjax
from qfdjax.scans.analysis import profile_1d
from qfdjax.scans.intervals import refine_intervals


def _surface(B, W):
    # Curved in both axes (quartic in beta, log-quadratic in w) and coupled, so that linear
    # interpolation across a grid cell misses the crossing by a wide margin.
    return 50.0 * (B - 3.1) ** 4 * 1e3 + 30.0 * np.log(W / 0.02) ** 2 + 5.0 * (B - 3.1) * np.log(W / 0.02)


def _gradient(B, W):
    lw = np.log(W / 0.02)
    return 200.0 * (B - 3.1) ** 3 * 1e3 + 5.0 * lw, (60.0 * lw + 5.0 * (B - 3.1)) / W


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
        return _surface(points[:, 0], points[:, 1]), g[0], g[1]

    found = refine_intervals(evaluate, beta, w, chi2, slopes, atol=1e-6)
    ref = chi2.min()
    for level in ("1", "4"):
        for side in ("lower", "upper"):
            x = found["beta"][level][side]
            assert found["beta"][level][f"{side}_converged"]
            # The profile over the same w values the scan's profile minimises over.
            assert np.min(_surface(x, w)) - ref == pytest.approx(float(level), abs=1e-5)
            y = found["w"][level][side]
            assert np.min(_surface(beta, y)) - ref == pytest.approx(float(level), abs=1e-5)
    assert len(calls) <= 12
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
