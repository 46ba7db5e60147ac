"""Nested-model comparison: the statistics on a linear-Gaussian pair where Wilks is exact, nesting, the command."""

import json
import math

import numpy as np
import pytest

from qfdjax.errors import InputError
from qfdjax.fitting.params import ParameterSpace
from qfdjax.stats.compare import nested_statistics, nesting_problems


def _linear_chi2(y, design, sigma):
    coef, *_ = np.linalg.lstsq(design / sigma[:, None], y / sigma, rcond=None)
    return float(np.sum(((y - design @ coef) / sigma) ** 2))


def test_linear_gaussian_pair_wilks_is_exact_and_the_toys_agree():
    """Null y = a, alternative y = a + b x + c x², data from the null: Δchi² ~ chi²(2) exactly."""
    rng = np.random.default_rng(5)
    x = np.linspace(-1, 1, 12)
    sigma = np.full(12, 0.3)
    null_design = np.ones((12, 1))
    alt_design = np.stack([np.ones(12), x, x**2], 1)

    def delta(y):
        return _linear_chi2(y, null_design, sigma) - _linear_chi2(y, alt_design, sigma)

    toys = np.array([delta(2.0 + sigma * rng.standard_normal(12)) for _ in range(4000)])
    observed = 2.0 + 0.25 * x + sigma * rng.standard_normal(12)
    chi2_null, chi2_alt = _linear_chi2(observed, null_design, sigma), _linear_chi2(observed, alt_design, sigma)
    stats = nested_statistics(chi2_null, chi2_alt, 1, 3, 12, toys)
    assert stats["delta_ndf"] == 2
    assert stats["wilks_p"] == pytest.approx(math.exp(-stats["delta_chi2"] / 2), rel=1e-12)  # chi²(2) tail
    binomial = math.sqrt(stats["wilks_p"] * (1 - stats["wilks_p"]) / toys.size)
    assert abs(stats["toys_p"] - stats["wilks_p"]) < 4 * binomial + 1 / toys.size
    # Wilks' p over the toys themselves is uniform (the exact case).
    p_toys = np.exp(-toys / 2)
    for level in (0.05, 0.32, 0.5):
        assert abs(np.mean(p_toys < level) - level) < 4 * math.sqrt(level * (1 - level) / toys.size)
    assert stats["aic"] == {"null": chi2_null + 2, "alt": chi2_alt + 6}
    assert stats["delta_bic"] == pytest.approx(chi2_null - chi2_alt - 2 * math.log(12), rel=1e-12)


def test_not_nested_is_refused_with_the_reason():
    seed = ParameterSpace.seed()
    shared = seed.with_overrides(shared=[["e.A", "mu.A", "tau.A"]])
    narrow = seed.with_overrides({"mu.U": [0.05, 0.1]})
    assert nesting_problems(shared, seed) == []
    assert nesting_problems(narrow, seed) == []
    assert "shares e.A" in nesting_problems(seed, shared)[0] or "shares" in " ".join(nesting_problems(seed, shared))
    assert "not inside" in nesting_problems(seed, narrow)[0]
    assert nesting_problems(seed, seed) == ["the two models are the same"]
    from qfdjax.stats.compare import compare

    with pytest.raises(InputError, match="not nested"):
        compare(seed, narrow, 3.1, 0.015)


def test_compare_command_shared_against_free_A(tmp_path):
    from qfdjax.cli import main
    from qfdjax.integrity import read_sealed_json

    null = tmp_path / "null.toml"
    alt = tmp_path / "alt.toml"
    body = '[bounds.mu]\nU = [0.0368, 0.2]\n'
    null.write_text(body + '[shared]\ngroups = [["e.A", "mu.A", "tau.A"]]\n')
    alt.write_text(body)
    out = tmp_path / "c.json"
    assert main(["compare", "--null", str(null), "--alt", str(alt), "--beta", "3.1", "--w", "0.015", "--toys", "40",
                 "--chunk", "40", "--out", str(out)]) == 0
    record = read_sealed_json(out)
    assert record["delta_ndf"] == 2 and record["null"]["free"] == 7 and record["alt"]["free"] == 9
    assert record["delta_chi2"] == pytest.approx(record["null"]["chi2"] - record["alt"]["chi2"])
    assert record["delta_chi2"] > 1.0  # sharing A costs chi² at this point (2.21 when measured)
    assert record["toys"]["certified"] == record["toys_used"] <= 40
    assert 0 < record["toys_p"] <= 1 and record["toys"]["negative_delta"] == 0
    # Swapped, the pair is not nested: refused in one line before any fit.
    assert main(["compare", "--null", str(alt), "--alt", str(null), "--beta", "3.1", "--w", "0.015"]) == 2
    json.dumps(record)
