"""HESSE errors and covariance: checked against the refitted profile, and refused where the Hessian is flat."""

import numpy as np
import pytest

import qfdjax
import qfdjax.errors
from qfdjax.fitting.params import ParameterSpace

WIDE = {"mu.U": [0.01, 0.2], "tau.U": [0.01, 0.3]}


@pytest.fixture(scope="module")
def identifiable():
    """All parameters fixed at an exact fit except mu.U and tau.U: two parameters, two informative masses."""
    exact = qfdjax.fit(3.1, 0.015, space=ParameterSpace.seed().with_overrides({"mu.U": [0.0368, 0.2]}))
    values = dict(zip(exact["param_names"], exact["params"], strict=True))
    fixed = {k: v for k, v in values.items() if k not in WIDE}
    fit = qfdjax.fit(3.1, 0.015, space=ParameterSpace.seed().with_overrides(WIDE, fixed=fixed))
    return fit, fixed


def test_errors_match_the_refitted_profile(identifiable):
    fit, fixed = identifiable
    assert not fit["hessian_singular"] and set(fit["errors"]) == set(WIDE)
    values = dict(zip(fit["param_names"], fit["params"], strict=True))
    for name in WIDE:
        sigma = fit["errors"][name]
        for sign in (+1, -1):
            space = ParameterSpace.seed().with_overrides(WIDE, fixed={**fixed, name: values[name] + sign * sigma})
            delta = qfdjax.fit(3.1, 0.015, space=space)["chi2"] - fit["chi2"]
            assert delta == pytest.approx(1.0, rel=0.02), (name, sign)
    cov = np.array(fit["covariance"])
    i, j = fit["param_names"].index("mu.U"), fit["param_names"].index("tau.U")
    assert cov[i, i] == pytest.approx(fit["errors"]["mu.U"] ** 2)
    assert np.count_nonzero(cov) == 4 and cov[i, j] == cov[j, i]


def test_flat_hessian_names_the_combinations_instead_of_errors():
    fit = qfdjax.fit(3.1, 0.015)
    assert fit["hessian_singular"] and fit["errors"] == {}
    assert fit["flat_combinations"] and all("e." in c for c in fit["flat_combinations"])
    assert fit["eta"] == 0.03 and fit["profile"] == "boundary"


def test_minos_agrees_with_hesse_on_a_quadratic_profile(identifiable, tmp_path):
    from qfdjax.fitting.minos import minos

    fit, fixed = identifiable
    space = ParameterSpace.seed().with_overrides(WIDE, fixed=fixed)
    result = minos(fit, ["mu.U", "tau.U"], space)
    for name in WIDE:
        assert result[name]["lower"] == pytest.approx(-fit["errors"][name], rel=0.02)
        assert result[name]["upper"] == pytest.approx(fit["errors"][name], rel=0.02)
        assert not result[name]["lower_cut_by_bound"] and not result[name]["upper_cut_by_bound"]
        # Illinois once bracketed: a convex profile used to pin one end and bisect (11 refits a side).
        assert result[name]["lower_refits"] <= 4 and result[name]["upper_refits"] <= 4, result[name]
    with pytest.raises(qfdjax.errors.InputError, match="on a bound"):
        minos(qfdjax.fit(3.1, 0.015), ["mu.U"], ParameterSpace.seed())


def test_parameter_profile_and_contour_agree_with_hesse_and_refits(identifiable, tmp_path):
    from qfdjax.fitting.param_profile import parameter_profile, write_profile

    fit, fixed = identifiable
    space = ParameterSpace.seed().with_overrides(WIDE, fixed=fixed)
    one = parameter_profile(fit, ["mu.U"], space, points=21)
    assert one["level"] == pytest.approx(1.0, abs=1e-9)
    best = one["best"]["mu.U"]
    lo, hi = one["interval"]
    assert best - lo == pytest.approx(fit["errors"]["mu.U"], rel=0.02)
    assert hi - best == pytest.approx(fit["errors"]["mu.U"], rel=0.02)

    pair = parameter_profile(fit, ["mu.U", "tau.U"], space, points=15)
    assert pair["level"] == pytest.approx(2.2958, abs=1e-4) and pair["contour_closed"]
    i, j = fit["param_names"].index("mu.U"), fit["param_names"].index("tau.U")
    cov = np.array(fit["covariance"])[np.ix_([i, j], [i, j])]
    centre = np.array([pair["best"]["mu.U"], pair["best"]["tau.U"]])
    points = np.array(pair["contour"][0])
    # On a quadratic profile the contour is the covariance ellipse d^T C^-1 d = level (correlation
    # included): each contour point lies on it to 2 % of its distance from the best fit ...
    quad = np.einsum("ki,ij,kj->k", points - centre, np.linalg.inv(cov), points - centre)
    np.testing.assert_allclose(np.sqrt(quad / pair["level"]), 1.0, rtol=0.02)
    # ... and independent refits on it give that Delta chi2 (to 2 % in distance: Delta chi2 ~ distance^2).
    for x, y in points[:: max(len(points) // 4, 1)]:
        s = ParameterSpace.seed().with_overrides(WIDE, fixed={**fixed, "mu.U": x, "tau.U": y})
        delta = qfdjax.fit(3.1, 0.015, space=s)["chi2"] - fit["chi2"]
        assert np.sqrt(delta / pair["level"]) == pytest.approx(1.0, rel=0.02)

    files = write_profile(pair, tmp_path / "contour")
    assert [f.rsplit(".", 1)[1] for f in files] == ["json", "csv", "png"]
    rows = (tmp_path / "contour.csv").read_text().splitlines()
    assert rows[0] == "kind,mu.U,tau.U,delta_chi2" and sum(r.startswith("refit") for r in rows) == 225
    assert sum(r.startswith("contour0") for r in rows) == len(points)
