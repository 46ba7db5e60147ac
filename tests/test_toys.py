"""Pseudo-experiments (issue 21): the generator, the refits, the p-value and the coverage, against what is known."""

import json

import numpy as np
import pytest

import qfdjax
from qfdjax.cli import main
from qfdjax.errors import InputError
from qfdjax.fitting.bounds_file import read_bounds_file
from qfdjax.fitting.observables import build_likelihood
from qfdjax.stats.toy_summary import binomial, summarize_toys
from qfdjax.stats.toys import ToyConfig, run_toys, standard_normals, toy_data

IDENTIFIABLE = "experiments/configs/identifiable_mu_tau_U.toml"


def test_generator_draws_the_declared_distribution_and_is_counter_based():
    prediction, sigma = np.array([0.5, 100.0, 1700.0]), np.array([5e-5, 1e-2, 0.17])
    data = toy_data(prediction, sigma, seed=3, toy_ids=np.arange(40_000))
    z = (data - prediction) / sigma
    # Mean within 4 standard errors of 0, sigma within 4 standard errors of 1, entries uncorrelated.
    assert np.all(np.abs(z.mean(axis=0)) < 4 / np.sqrt(40_000))
    assert np.all(np.abs(z.std(axis=0) - 1) < 4 / np.sqrt(2 * 40_000))
    assert abs(np.corrcoef(z.T)[0, 1]) < 4 / np.sqrt(40_000)
    # Toy k is a function of (seed, k) only: any chunking gives the same toys, another seed others.
    parts = np.concatenate([toy_data(prediction, sigma, 3, ids) for ids in np.array_split(np.arange(40_000), 7)])
    np.testing.assert_array_equal(parts, data)
    np.testing.assert_array_equal(toy_data(prediction, sigma, 3, [12345]), data[12345:12346])
    assert not np.allclose(toy_data(prediction, sigma, 4, [0]), data[:1])


def test_linear_gaussian_coverage_is_wilks():
    """Where Wilks holds exactly (a Gaussian mean, no bounds), Delta chi2 at the truth is chi2(1):
    the counting reproduces 68.27 % and 95.45 % within binomial errors."""
    z = standard_normals(11, np.arange(20_000), 1)[:, 0]
    arrays = {"valid": np.ones(z.size, bool), "chi2": z**2, "at_lower": np.zeros((z.size, 1), bool),
              "at_upper": np.zeros((z.size, 1), bool), "dchi2_truth_mu": z**2}
    c = summarize_toys(arrays, 1.0, 1, ["mu"], ["mu"], ["mu"])["coverage"]["mu"]
    assert abs(c["0.6827"] - 0.6827) < 3 * c["0.6827_error"]
    assert abs(c["0.9545"] - 0.9545) < 3 * c["0.9545_error"]
    assert binomial(0, 0)[0] != binomial(0, 0)[0]  # NaN without trials


@pytest.fixture(scope="module")
def seed_toys():
    return run_toys(3.1, 0.015, toys=ToyConfig(n=24, seed=5, chunk=16))


def test_toy_refit_equals_a_single_fit_on_its_data(seed_toys):
    likelihood = build_likelihood(("e", "mu", "tau"), ("mass",))
    arrays = seed_toys["arrays"]
    truth = list(seed_toys["truth"].values())
    for k in (0, 17):
        # Another code path (one point, its own starts), given the toy's truth as a start as the toys are.
        single = qfdjax.fit(3.1, 0.015, likelihood=likelihood.with_data(arrays["data"][k]),
                            config=qfdjax.FitConfig(starts=8), start=truth)
        assert single["chi2"] == pytest.approx(arrays["chi2"][k], abs=1e-9, rel=1e-9)
    # The data are drawn around the best fit's prediction: the observed chi2 is far out, toys' are O(1).
    n_valid = seed_toys["n_valid"]
    assert n_valid >= 20 and seed_toys["p_value"] == 0.0
    assert seed_toys["p_value_upper_95"] == pytest.approx(1 - 0.05 ** (1 / n_valid))
    assert seed_toys["ndf"] == 1 and np.median(arrays["chi2"]) < 10
    assert "sigma_model x measured mass" in seed_toys["sigma_convention"]
    # Same toys from another chunking.
    again = run_toys(3.1, 0.015, toys=ToyConfig(n=24, seed=5, chunk=24))
    np.testing.assert_array_equal(again["arrays"]["data"], arrays["data"])
    np.testing.assert_allclose(again["arrays"]["chi2"], arrays["chi2"], atol=1e-9)


def test_toys_are_certified_at_their_reported_point():
    """Near chi^2 ~ 1 the LM's last projected gradient sits at its rounding floor (5e-5..2e-4), so its
    certificate was a coin toss between equal fits (169 of 200 seed toys); the polished point that is
    reported carries its own gradient, which certifies 185 (the other 15 have 1e-4..2e-2 at both points)."""
    result = run_toys(3.1, 0.015, toys=ToyConfig(n=200, seed=0, chunk=256))
    assert result["n_valid"] >= 180


def test_coverage_is_nominal_where_the_model_is_identifiable(tmp_path):
    """mu.U and tau.U free, everything else fixed at an exact fit: locally linear, Wilks should hold."""
    space = read_bounds_file(IDENTIFIABLE)
    record = qfdjax.toys(3.1, 0.015, n=150, seed=1, coverage=("mu.U", "tau.U"), space=space, out=tmp_path / "t")
    for name in ("mu.U", "tau.U"):
        c = record["coverage"][name]
        assert c["n"] == record["n_valid"] >= 140
        assert abs(c["0.6827"] - 0.6827) < 3 * max(c["0.6827_error"], 0.03), c
        assert abs(c["0.9545"] - 0.9545) < 3 * max(c["0.9545_error"], 0.015), c
        assert c["min_dchi2_truth"] >= -1e-6
    saved = json.loads((tmp_path / "t" / "toys.json").read_text())
    assert saved["coverage"] == record["coverage"] and saved["n"] == 150 and "versions" in saved
    with np.load(tmp_path / "t" / "toys.npz") as data:
        assert data["data"].shape == (150, 3) and data["params"].shape == (150, 9) and data["valid"].shape == (150,)
    assert (tmp_path / "t" / "toys.png").stat().st_size > 10_000
    assert (tmp_path / "t" / "toys.csv").read_text().count("\n") == 151
    # Every toy fits exactly here: the report says chi^2 is zero to rounding instead of printing its noise.
    from qfdjax.cli.toys import toys_table

    assert record["chi2_toys_median"] < 1e-15 and record["chi2_observed"] < 1e-15
    report = toys_table(record)
    assert "observed chi2_min = 0 to rounding" in report and "median 0 to rounding" in report, report


@pytest.mark.parametrize("argv, fragment", [
    (["--n", "0"], "n = 0.0 is out of range"),
    (["--n", "-5"], "n = -5.0 is out of range"),
    (["--coverage", "mu.X"], "coverage names 'mu.X'"),
    (["--coverage", "e.A", "--bounds", IDENTIFIABLE], "coverage of e.A is undefined: it is fixed"),
    (["--method", "de"], "gradient method only"),
    (["--n", "100000000"], "n = 100000000.0 is out of range"),
])
def test_toys_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, fragment):
    out = tmp_path / "toys"
    assert main(["toys", "--beta", "3.1", "--w", "0.015", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_truth_outside_the_bounds_is_refused(tmp_path, capsys):
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"mu.U": 0.01}))
    assert main(["toys", "--beta", "3.1", "--w", "0.015", "--truth", str(truth), "--out", str(tmp_path / "t")]) == 2
    assert "truth mu.U = 0.01 is out of range" in capsys.readouterr().err
    with pytest.raises(InputError, match="truth names 'mu.x'"):
        run_toys(3.1, 0.015, toys=ToyConfig(n=2), truth={"mu.x": 1.0})


def test_fisher_and_asimov_agree_where_the_profile_is_quadratic(tmp_path, capsys):
    """Masses + g_tau at seed bounds: below the truth the bounds stay active and the Asimov profile is the
    Fisher parabola (its Delta chi2 = 1 crossing at sigma_beta); above, bounds release and it is not."""
    out = tmp_path / "F.json"
    assert main(["forecast", "--beta", "3.1", "--w", "0.015", "--observables", "mass,g_tau", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["asimov_chi2_at_truth"] < 1e-12 and r["asimov_converged"][0]
    assert r["asimov_distances"][0] == pytest.approx(r["sigma_beta"], rel=0.01)
    assert r["sigma_beta"] == pytest.approx(0.0853, rel=0.02)
    assert "Fisher" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["--sigma", "g_tau"], "give TERM=VALUE"),
    (["--sigma", "g_tau=-1"], "sigma g_tau = -1.0 is out of range"),
    (["--sigma", "g=1e-6"], "sigma for 'g': not among the observables"),
])
def test_forecast_bad_input(tmp_path, capsys, argv, fragment):
    assert main(["forecast", "--beta", "3.1", "--w", "0.015", "--observables", "mass,g_tau", *argv,
                 "--out", str(tmp_path / "F.json")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "F.json").exists()


def test_toys_are_the_same_under_another_chunking_and_device_count():
    """Toy k's data and its refit depend on (seed, k) only: 7 toys in chunks of 3 in a process with two
    devices equal 7 toys in one chunk here, data bit for bit and chi2 to rounding."""
    import os
    import subprocess
    import sys

    script = ("import json, jax, numpy as np, qfdjax; assert len(jax.devices()) == 2;"
              "r = qfdjax.toys(3.1, 0.015, n=7, seed=11, chunk=3, coverage=['tau.U'],"
              " space=qfdjax.read_bounds('experiments/configs/identifiable_mu_tau_U.toml'));"
              "a = r['arrays']; print(json.dumps({k: np.asarray(a[k]).tolist() for k in"
              " ('data', 'chi2', 'dchi2_truth_tau.U', 'valid')}))")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    here = qfdjax.toys(3.1, 0.015, n=7, seed=11, chunk=7, coverage=["tau.U"],
                       space=read_bounds_file("experiments/configs/identifiable_mu_tau_U.toml"))["arrays"]
    np.testing.assert_array_equal(np.array(other["data"]), here["data"])
    assert np.all(other["valid"]) and np.all(here["valid"])
    # chi2 ~ 1e-24 here (exact fits): compared in absolute terms, as chi2 itself.
    np.testing.assert_allclose(np.array(other["chi2"]), here["chi2"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.array(other["dchi2_truth_tau.U"]), here["dchi2_truth_tau.U"], rtol=1e-9,
                               atol=1e-9)


def test_beta_and_w_coverage_use_each_toys_own_profile_minimum():
    """--coverage beta,w: a toy's Delta chi2 at the truth is its chi2 there minus its own minimum over beta
    (w held) or over w (beta held), found for all toys at once; equal to `fit --free beta` / `--free w`
    (a sequential search) run on that toy's data."""
    from qfdjax.fitting.profile_fit import fit_profile

    space = qfdjax.ParameterSpace.seed()
    record = qfdjax.toys(3.1, 0.015, n=4, seed=2, coverage=["beta", "w"], space=space)
    arrays = record["arrays"]
    assert arrays["valid"].all() and set(record["coverage"]) == {"beta", "w"}
    assert "held at the truth" in record["coverage_globals"]["beta"]
    toy = int(np.argmax(arrays["dchi2_truth_beta"]))
    assert arrays["dchi2_truth_beta"][toy] > 1e-6  # a toy whose minimum is not at the truth
    likelihood = build_likelihood(space.leptons, ("mass",)).with_data(arrays["data"][toy])
    at_truth = qfdjax.fit(3.1, 0.015, space=space, likelihood=likelihood)["chi2"]
    for name in ("beta", "w"):
        found = fit_profile(3.1, 0.015, (name,), space=space, likelihood=likelihood)
        assert found["free_globals"]["converged"]
        np.testing.assert_allclose(arrays[f"dchi2_truth_{name}"][toy], at_truth - found["chi2"], rtol=1e-6)


def test_toy_parts_merge_into_exactly_the_one_run(tmp_path):
    """toys --toys A:B on several hosts, then qfdjax merge: the arrays and every summary number equal one run's."""
    from qfdjax.cli import main
    from qfdjax.integrity import read_sealed_json
    from qfdjax.io import load_npz

    common = ["toys", "--beta", "3.1", "--w", "0.015", "--n", "9", "--seed", "4", "--chunk", "2", "--coverage",
              "tau.U", "--bounds", "experiments/configs/identifiable_mu_tau_U.toml"]
    assert main([*common, "--out", str(tmp_path / "whole")]) == 0
    assert main([*common, "--toys", "4:9", "--out", str(tmp_path / "b")]) == 0
    assert main([*common, "--toys", "0:4", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--toys", "3:9", "--out", str(tmp_path / "odd")]) == 2  # not on a chunk boundary
    assert main(["merge", str(tmp_path / "b"), str(tmp_path / "a"), "--out", str(tmp_path / "merged")]) == 0
    whole = read_sealed_json(tmp_path / "whole" / "toys.json")
    merged = read_sealed_json(tmp_path / "merged" / "toys.json")
    for key in ("n", "n_valid", "p_value", "coverage", "fraction_on_bound", "chi2_toys_mean", "toy_range"):
        if key in whole:
            assert merged[key] == whole[key], key
    a, b = load_npz(tmp_path / "whole" / "toys.npz"), load_npz(tmp_path / "merged" / "toys.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # A gap (or a part of another run) is refused in one line.
    assert main(["merge", str(tmp_path / "b"), "--out", str(tmp_path / "gap")]) == 2
    assert main([*common[:-2], "--toys", "9:12", "--out", str(tmp_path / "c")]) == 2  # past --n
