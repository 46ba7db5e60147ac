"""Posteriors by HMC: checked against answers known without a sampler (HESSE, direct quadrature)."""

import ast
import pathlib

import numpy as np
import pytest

pytest.importorskip("blackjax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from qfdjax.bayes.posterior import build_posterior, sampled_names, unconstrained  # noqa: E402
from qfdjax.bayes.priors import read_priors  # noqa: E402
from qfdjax.bayes.run import sample  # noqa: E402
from qfdjax.bayes.sampler import SamplerConfig  # noqa: E402
from qfdjax.errors import InputError  # noqa: E402
from qfdjax.fitting.fit import fit  # noqa: E402
from qfdjax.fitting.observables import build_likelihood  # noqa: E402
from qfdjax.fitting.params import ParameterSpace  # noqa: E402

# experiments/configs/identifiable_mu_tau_U.toml: two parameters, each pinned by one mass.
IDENTIFIABLE_FIXED = {"e.R_c": 0.6926744141355969, "e.U": 0.012591504611900424, "e.A": 0.809618847216378,
                      "mu.R_c": 0.3, "mu.A": 1.0, "tau.R_c": 0.3, "tau.A": 0.8460406495844237}
IDENTIFIABLE = ParameterSpace.seed().with_overrides({"mu.U": [0.01, 0.2], "tau.U": [0.01, 0.3]}, IDENTIFIABLE_FIXED)


@pytest.fixture(scope="module")
def identifiable():
    return sample(3.1, 0.015, space=IDENTIFIABLE, config=SamplerConfig(chains=64, draws=1000, warmup=1000))


def test_near_gaussian_posterior_equals_hesse(identifiable):
    best = fit(3.1, 0.015, space=IDENTIFIABLE)
    summary = identifiable["summary"]
    assert summary["certified"], summary["failed"]
    for name in ("mu.U", "tau.U"):
        p = summary["parameters"][name]
        assert p["sd"] == pytest.approx(best["errors"][name], rel=0.03)
        assert abs(p["mean"] - best["params"][IDENTIFIABLE.names.index(name)]) < 0.1 * p["sd"]
        assert p["r_hat"] <= 1.01 and p["ess_bulk"] >= 400 and p["ess_tail"] >= 400
    assert identifiable["draws"].shape == (64, 1000, 2)


def test_bounded_one_parameter_quantiles_equal_direct_quadrature():
    """mu.U alone, its lower bound 1e-6 above the unbounded optimum (about half a posterior sd): a
    posterior piled against its bound, compared with the CDF of the likelihood on a fine grid."""
    fixed = dict(IDENTIFIABLE_FIXED, **{"tau.U": 0.14999999999999986})
    space = ParameterSpace.seed().with_overrides({"mu.U": [0.036801, 0.04]}, fixed)
    record = sample(3.1, 0.015, space=space, config=SamplerConfig(chains=32, draws=1000, warmup=500))
    assert record["summary"]["certified"], record["summary"]["failed"]
    draws = record["draws"][..., 0].ravel()
    likelihood = build_likelihood(space.leptons)
    posterior = build_posterior(space, likelihood, 3.1, 0.015, eta=0.03,
                                priors=read_priors({}, ["mu.U"], [0.036801]))
    lo = 0.036801
    grid = lo + np.linspace(0.0, draws.max() - lo + 6 * draws.std(), 8001)  # to where the density is < 1e-10
    z = unconstrained(posterior, grid[:, None])
    chi2 = jax.vmap(lambda zz: likelihood.marginal_chi2(posterior.state(zz)))(jnp.asarray(z))
    density = np.exp(-0.5 * (np.asarray(chi2) - np.min(np.asarray(chi2))))
    assert density[-1] < 1e-10 * density.max()
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    for p in (0.05, 0.16, 0.5, 0.84, 0.95):
        q = np.quantile(draws, p)
        assert np.interp(q, grid, cdf) == pytest.approx(p, abs=0.01), p
    # The bound is active: the mode of the density in mu.U is the bound itself.
    assert grid[np.argmax(density)] == lo


def test_simulation_based_calibration_ranks_are_uniform():
    """200 data sets from the prior, each its own posterior (all as lanes): ranks of the truths uniform;
    the same draws made overconfident (shrunk by half about their mean) fail the same test."""
    from qfdjax.bayes.calibration import rank_uniformity, simulation_based_calibration

    result = simulation_based_calibration(IDENTIFIABLE, 3.1, 0.015, simulations=200,
                                          config=SamplerConfig(chains=4, draws=100, warmup=200))
    assert result["divergences"] <= 1e-3 * 200 * 4 * 100  # one in 80,000 transitions here
    draws, truth = result["draws"], result["truth"]
    for j, name in enumerate(result["names"]):
        assert result["parameters"][name]["p_uniform"] > 1e-3, result["parameters"][name]
        mean = draws[..., j].mean(axis=1, keepdims=True)
        shrunk = mean + 0.5 * (draws[..., j] - mean)
        _, p = rank_uniformity(np.sum(shrunk < truth[:, None, j], axis=1), draws.shape[1], result["bins"])
        assert p < 1e-6


def test_short_chains_are_not_certified_and_say_why():
    record = sample(3.1, 0.015, space=IDENTIFIABLE, config=SamplerConfig(chains=4, draws=20, warmup=20))
    summary = record["summary"]
    assert not summary["certified"]
    assert any("ESS" in reason for reason in summary["failed"])
    from qfdjax.bayes.summary import posterior_text

    assert "NOT CERTIFIED" in posterior_text(record)


def test_interrupted_run_resumes_to_the_same_draws(tmp_path, monkeypatch):
    import qfdjax.bayes.run as run

    config = SamplerConfig(chains=8, draws=60, warmup=30, block=20, seed=3)
    whole = sample(3.1, 0.015, space=IDENTIFIABLE, config=config, out=tmp_path / "whole")
    saves = []
    original = run._save_checkpoint

    def interrupted(directory, fingerprint, state, tuning, done, blocks_done):
        original(directory, fingerprint, state, tuning, done, blocks_done)
        saves.append(blocks_done)
        if blocks_done == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(run, "_save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sample(3.1, 0.015, space=IDENTIFIABLE, config=config, out=tmp_path / "split")
    monkeypatch.setattr(run, "_save_checkpoint", original)
    # Another run's settings in the interrupted run's directory are refused, not mixed in.
    with pytest.raises(InputError, match="other settings"):
        sample(3.1, 0.015, space=IDENTIFIABLE, config=SamplerConfig(chains=8, draws=60, warmup=30, block=20, seed=4),
               out=tmp_path / "split")
    resumed = sample(3.1, 0.015, space=IDENTIFIABLE, config=config, out=tmp_path / "split")
    np.testing.assert_array_equal(resumed["draws"], whole["draws"])
    assert not (tmp_path / "split" / "checkpoint.npz").exists()  # finished: the draws live in posterior.nc
    from qfdjax.integrity import read_sealed_json

    read_sealed_json(tmp_path / "whole" / "posterior.json", files={"posterior_nc": tmp_path / "whole" / "posterior.nc"})


def test_priors_are_parsed_or_refused_by_name():
    names, lower = ["mu.U", "tau.U"], [0.0, 0.01]
    priors = read_priors({"tau.U": {"normal": [0.1, 0.02]}}, names, lower)
    assert priors["mu.U"].kind == "uniform" and priors["tau.U"].sd == 0.02
    with pytest.raises(InputError, match="positive lower bound"):
        read_priors({"mu.U": "log-uniform"}, names, lower)
    with pytest.raises(InputError, match="not sampled"):
        read_priors({"e.A": "uniform"}, names, lower)
    with pytest.raises(InputError, match="sd > 0"):
        read_priors({"tau.U": {"normal": [0.1, 0.0]}}, names, lower)


def test_a_normal_prior_enters_the_density():
    likelihood = build_likelihood(IDENTIFIABLE.leptons)
    names = sampled_names(IDENTIFIABLE)
    flat = build_posterior(IDENTIFIABLE, likelihood, 3.1, 0.015, eta=0.03, priors=read_priors({}, names, [0.01, 0.01]))
    normal = build_posterior(IDENTIFIABLE, likelihood, 3.1, 0.015, eta=0.03,
                             priors=read_priors({"tau.U": {"normal": [0.1, 0.02]}}, names, [0.01, 0.01]))
    z = jnp.asarray(unconstrained(flat, np.array([0.0368, 0.15])))
    assert float(normal.log_density(z) - flat.log_density(z)) == pytest.approx(-0.5 * (0.05 / 0.02) ** 2, rel=1e-9)


def test_only_the_bayes_package_imports_its_extra():
    root = pathlib.Path(__file__).resolve().parents[1] / "qfdjax"
    offenders = []
    for path in root.rglob("*.py"):
        if "bayes" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("blackjax", "arviz", "corner")]
    assert not offenders
