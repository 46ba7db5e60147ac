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
    values = dict(zip(exact["param_names"], exact["params"]))
    fixed = {k: v for k, v in values.items() if k not in WIDE}
    fit = qfdjax.fit(3.1, 0.015, space=ParameterSpace.seed().with_overrides(WIDE, fixed=fixed))
    return fit, fixed


def test_errors_match_the_refitted_profile(identifiable):
    fit, fixed = identifiable
    assert not fit["hessian_singular"] and set(fit["errors"]) == set(WIDE)
    values = dict(zip(fit["param_names"], fit["params"]))
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
    with pytest.raises(qfdjax.errors.InputError, match="on a bound"):
        minos(qfdjax.fit(3.1, 0.015), ["mu.U"], ParameterSpace.seed())
