"""Bound costs and profile slopes against central differences of independently refitted chi^2_min.

The refits use the SciPy peer script's own NumPy energies and TRF fitter
(benchmarks/peer_scipy.py), so the envelope-theorem derivatives are checked
against a fitter that shares no code with qfdjax.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import peer_scipy as peer  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

import qfdjax  # noqa: E402

BETA, W = 3.1, 0.015


@pytest.fixture(scope="module")
def record():
    return qfdjax.fit(BETA, W)


def _refit(x0, beta, w, lower, upper):
    lam = 0.03 * beta * 0.88**2 / 11
    r = least_squares(peer.residuals, np.clip(x0, lower, upper), bounds=(lower, upper), method="trf",
                      args=(beta, w, lam), x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000)
    return 2 * r.cost


def test_profile_slopes_match_refits(record):
    x0 = np.array(record["params"])
    lo, hi = peer.LOWER, peer.UPPER
    h = 1e-3
    dbeta = (_refit(x0, BETA + h, W, lo, hi) - _refit(x0, BETA - h, W, lo, hi)) / (2 * h)
    hw = 1e-5
    dw = (_refit(x0, BETA, W + hw, lo, hi) - _refit(x0, BETA, W - hw, lo, hi)) / (2 * hw)
    assert record["dchi2_dbeta"] == pytest.approx(dbeta, rel=1e-2)
    assert record["dchi2_dw"] == pytest.approx(dw, rel=1e-2)
    assert record["dchi2_dbeta"] < 0  # the seed's "beta_min at the edge": chi2 keeps falling with beta


def test_bound_costs_match_refits(record):
    names = record["param_names"]
    costs = record["bound_costs"]
    assert set(costs) == {"mu.R_c.upper", "mu.U.lower", "mu.A.upper", "tau.R_c.lower", "tau.U.upper",
                          "tau.A.lower"}
    x0 = np.array(record["params"])
    for key, cost in costs.items():
        name, side = key.rsplit(".", 1)
        j = names.index(name)
        step = 1e-4 * (peer.UPPER[j] - peer.LOWER[j])
        moved = []
        for sign in (+1, -1):
            lo, hi = peer.LOWER.copy(), peer.UPPER.copy()
            (hi if side == "upper" else lo)[j] += sign * step
            moved.append(_refit(x0, BETA, W, lo, hi))
        assert cost == pytest.approx((moved[0] - moved[1]) / (2 * step), rel=1e-2), key
    # An upper bound that holds chi2 up costs negative chi2 per unit (widening it helps), a lower one positive.
    assert costs["tau.U.upper"] < 0 < costs["mu.U.lower"]


def test_identifiability_by_counting_and_rank(record):
    ident = record["identifiability"]
    assert ident["n_data"] == 3 and ident["n_profiled"] == 1 and ident["n_free"] == 3
    assert ident["jacobian_rank"] == 1
    assert len(ident["null_space"]) == 2 and all("e." in d for d in ident["null_space"])


def test_free_beta_ends_at_a_kkt_point():
    from qfdjax.fitting.profile_fit import fit_profile

    r = fit_profile(3.1, 0.015, free=("beta",), beta_bounds=(3.0, 3.2), observables=("mass", "g_tau"))
    side = r["free_globals"]["at_bound"].get("beta")
    slope = r["dchi2_dbeta"]
    # A bounded stationary point: interior with no slope, or on a bound the slope pushes against.
    if side is None:
        assert abs(slope) <= 1e-6 * r["chi2"]
    else:
        assert (slope < 0) == (side == "upper")
    grid = [qfdjax.fit(b, 0.015, observables=("mass", "g_tau"))["chi2"] for b in np.linspace(3.0, 3.2, 5)]
    assert r["chi2"] <= min(grid) + 1e-6 * min(grid)


def test_tau_g_term_gives_beta_curvature(record):
    with_tau = qfdjax.fit(BETA, W, observables=("mass", "g_tau"))
    assert with_tau["identifiability"]["beta_profile_curvature"] > 0
    assert record["identifiability"]["beta_profile_curvature"] < 0
