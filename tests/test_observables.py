"""The g-factor term, lepton subsets and the power profile."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import qfdjax
from qfdjax import lepton_energies
from qfdjax.errors import InputError
from qfdjax.fitting.fit import FitConfig, evaluate_params, fit
from qfdjax.fitting.observables import G_TARGETS, build_likelihood
from qfdjax.fitting.params import ParameterSpace
from qfdjax.model.profiles import PowerProfile, make_profile

from . import numpy_quad

M = {"e": 0.511, "mu": 105.7, "tau": 1776.8}


def numpy_chi2_with_g(params, beta, w, lam, leptons, profile=numpy_quad.boundary_layer):
    """chi^2 = mass + g term, from NumPy quadrature energies and the formulas of the design."""
    p = np.asarray(params).reshape(len(leptons), 3)
    E = np.array([sum(np.array(numpy_quad.energies(profile, beta, w, lam, *row)) * [1, -1, 1]) for row in p])
    m = np.array([M[lep] for lep in leptons])
    sig = 1e-4 * m
    S = np.sum(m * E / sig**2) / np.sum(E**2 / sig**2)
    chi2_mass = np.sum(((S * E - m) / sig) ** 2)
    use = [i for i, lep in enumerate(leptons) if lep in G_TARGETS]
    x = 0.2 * 1.0 * (p[:, 0] + w) * p[:, 1] / (S * E / 0.511)
    g = np.array([G_TARGETS[leptons[i]] for i in use])
    C = np.sum(g * x[use]) / np.sum(x[use] ** 2)
    chi2_g = np.sum(((C * x[use] - g) / 1e-3) ** 2)
    return chi2_mass, chi2_g, S, C, E, x[use], g


def test_exact_energies_match_numpy_quadrature():
    for args in [(3.1, 0.015, 0.0065, 0.5, 0.1, 0.9), (2.9, 0.04, 0.02, 1.2, 0.03, 0.75),
                 (3.3, 0.006, 0.001, 0.07, 0.18, 1.0)]:
        want = numpy_quad.energies(numpy_quad.boundary_layer, *args)
        got = lepton_energies(*args)
        np.testing.assert_allclose([got.E_circ, got.E_stab, got.E_grad], want, rtol=1e-11)


@pytest.mark.parametrize("s", [1.0, 2.0, 3.0, 4.0])
def test_power_profile_energies_exact(s):
    args = (3.1, 0.02, 0.006, 0.4, 0.12, 0.85)
    want = numpy_quad.energies(numpy_quad.power(s), *args)
    got = lepton_energies(*args, profile=PowerProfile(s))
    np.testing.assert_allclose([got.E_circ, got.E_stab, got.E_grad], want, rtol=1e-11)
    # Integer s <= 4 is a polynomial on each panel: doubling the nodes changes nothing.
    doubled = lepton_energies(*args, profile=PowerProfile(s), numerics=qfdjax.Exact(order_core=12, order_layer=22))
    assert float(got.total) == pytest.approx(float(doubled.total), rel=1e-13)


def test_power_profile_in_reference_numerics_and_bad_s():
    numerics = qfdjax.reference_numerics(0.02)
    ref = lepton_energies(3.1, 0.02, 0.006, 0.4, 0.12, 0.85, numerics=numerics, profile=PowerProfile(2.0))
    ex = lepton_energies(3.1, 0.02, 0.006, 0.4, 0.12, 0.85, profile=PowerProfile(2.0))
    assert float(ref.total) == pytest.approx(float(ex.total), rel=5e-2)
    with pytest.raises(InputError, match="power_s"):
        make_profile("power", -1.0)
    with pytest.raises(InputError, match="profile"):
        make_profile("gaussian")


def test_chi2_with_g_matches_numpy_and_profiled_constants_are_minima():
    leptons = ("e", "mu")
    params = [0.9, 0.03, 0.8, 0.2, 0.12, 0.9]
    beta, w = 3.04, 0.02
    lam = float(qfdjax.lambda_from_eta(beta))
    space = ParameterSpace.seed(leptons)
    got = evaluate_params(params, beta, w, lam, space=space, likelihood=build_likelihood(leptons, ("mass", "g")))
    chi2_mass, chi2_g, S, C, E, x, g = numpy_chi2_with_g(params, beta, w, lam, leptons)
    assert got["chi2_mass"] == pytest.approx(chi2_mass, rel=1e-8)
    assert got["chi2_g"] == pytest.approx(chi2_g, rel=1e-8)
    assert got["chi2"] == pytest.approx(chi2_mass + chi2_g, rel=1e-8)
    assert got["S"] == pytest.approx(S, rel=1e-10)
    assert got["C_g"] == pytest.approx(C, rel=1e-8)
    m = np.array([M[lep] for lep in leptons])
    brute_S = minimize_scalar(lambda s: np.sum(((s * E - m) / (1e-4 * m)) ** 2), bracket=(0.5 * S, 2 * S),
                              tol=1e-12).x
    brute_C = minimize_scalar(lambda c: np.sum(((c * x - g) / 1e-3) ** 2), bracket=(0.5 * C, 2 * C), tol=1e-12).x
    assert got["S"] == pytest.approx(brute_S, rel=1e-6)
    assert got["C_g"] == pytest.approx(brute_C, rel=1e-6)


def test_synthetic_recovery_with_g_term():
    leptons = ("e", "mu")
    truth = np.array([0.8, 0.04, 0.85, 0.15, 0.12, 0.9])
    beta, w = 3.05, 0.02
    lam = float(qfdjax.lambda_from_eta(beta))
    E = np.asarray(lepton_energies(beta, w, lam, truth[0::3], truth[1::3], truth[2::3]).total)
    S_true, C_true = 5.0, 900.0
    masses = S_true * E
    x = 0.2 * (truth[0::3] + w) * truth[1::3] / (masses / 0.511)
    g = C_true * x
    likelihood = build_likelihood(leptons, ("mass", "g"), masses=masses)
    likelihood = qfdjax.Likelihood(
        likelihood.mass, (type(likelihood.extras[0]).for_leptons(leptons, targets=dict(zip(leptons, g, strict=True))),))
    names = ParameterSpace.seed(leptons).names
    # Two free parameters for two constraints (the mass ratio and the g ratio;
    # S and C_g absorb the scales): identifiable.
    free = ("e.U", "mu.U")
    space = ParameterSpace.seed(leptons).with_overrides(
        fixed={n: v for n, v in zip(names, truth, strict=True) if n not in free})
    r = fit(beta, w, lam, config=FitConfig(starts=6), space=space, likelihood=likelihood)
    assert r["chi2"] < 1e-10
    np.testing.assert_allclose(r["params"], truth, rtol=1e-6)
    assert r["S"] == pytest.approx(S_true, rel=1e-8) and r["C_g"] == pytest.approx(C_true, rel=1e-6)


def test_fit_cli_with_g_term(tmp_path):
    import json

    from qfdjax.cli import main

    out = tmp_path / "F.json"
    code = main(["fit", "--beta", "3.043233053", "--w", "0.02", "--leptons", "e,mu", "--observables", "mass,g",
                 "--starts", "4", "--out", str(out)])
    assert code == 0
    r = json.loads(out.read_text())
    for key in ("chi2", "chi2_mass", "chi2_g", "S", "C_g", "params"):
        assert key in r
    assert len(r["params"]) == 6
    assert r["chi2"] == pytest.approx(r["chi2_mass"] + r["chi2_g"], rel=1e-10)
    assert "sigma_beta" in r["identifiability"]


def test_bad_observables():
    with pytest.raises(InputError, match="must include mass"):
        build_likelihood(("e", "mu"), ("g",))
    with pytest.raises(InputError, match="unknown spin"):
        build_likelihood(("e",), ("mass", "spin"))
    with pytest.raises(InputError, match="g target"):
        build_likelihood(("tau",), ("mass", "g"))
