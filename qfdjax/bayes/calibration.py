"""Simulation-based calibration (Talts et al. 2018): data sets drawn from the prior, each one's posterior sampled.

If the sampler draws from the right posterior, the rank of each simulation's true value among its
own posterior draws is uniform.  Every data set is a lane: the fits that start the chains, the
modes, the warm-up and the draws of all simulations run as one batch of compiled calls.

The scale S has a flat (improper) prior in the likelihood; the simulations draw it uniformly within
±`scale_spread` of the value that reproduces the measured masses, a range ~500 times wider than
its posterior (sigma_model = 1e-4 relative), so the proper prior used here and the flat prior of the
sampler give the same posteriors.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, check_range
from ..fitting.params import ParameterSpace
from .posterior import build_posterior, sampled_names, unconstrained, whitening
from .priors import read_priors
from .sampler import SamplerConfig


def rank_uniformity(ranks: np.ndarray, largest: int, bins: int) -> tuple[np.ndarray, float]:
    """Histogram of ranks in 0..largest and the chi-square p-value of uniformity."""
    from jax.scipy.special import gammaincc

    edges = np.linspace(-0.5, largest + 0.5, bins + 1)
    counts, _ = np.histogram(ranks, edges)
    expected = len(ranks) * np.diff(edges) / (largest + 1)
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    return counts, float(gammaincc((bins - 1) / 2.0, statistic / 2.0))


def simulation_based_calibration(space: ParameterSpace, beta: float, w: float, *, simulations: int = 200,
                                 config: SamplerConfig = SamplerConfig(chains=8, draws=100, warmup=300),
                                 eta: float = 0.03, scale_spread: float = 0.05, bins: int = 20) -> dict:
    """Ranks of the true values among each simulated data set's posterior draws, and their uniformity."""
    import jax
    import jax.numpy as jnp

    from ..fitting.fit import FitConfig, fit_points, resolve_lambda
    from ..fitting.observables import build_likelihood
    from . import sampler as hmc
    from .posterior import find_mode

    check_range("simulations", simulations, lower=10, upper=100_000, integer=True)
    check_range("bins", bins, lower=2, upper=1000, integer=True)
    check_range("scale_spread", scale_spread, lower=0.0, upper=0.5, lower_open=True)
    names = sampled_names(space)
    lo, span = space.arrays()
    free = ~space.fixed
    likelihood = build_likelihood(space.leptons)
    posterior = build_posterior(space, likelihood, beta, w, eta=eta, priors=read_priors({}, names, lo[free]))
    if config.method != "chees":
        raise InputError("simulation-based calibration runs the chees sampler (all simulations share its lanes)")
    rng = np.random.default_rng([config.seed, 13])
    truth = lo[free] + span[free] * rng.uniform(size=(simulations, len(names)))
    z_truth = jnp.asarray(unconstrained(posterior, truth))
    state = jax.vmap(posterior.state)(z_truth)
    energies = np.asarray(state.energies.total)
    masses = np.asarray(likelihood.mass.masses)
    sigma = np.asarray(likelihood.mass.sigma)
    scale = np.asarray(state.S) * (1.0 + scale_spread * rng.uniform(-1.0, 1.0, size=simulations))
    data = scale[:, None] * energies + sigma * rng.standard_normal((simulations, len(masses)))
    lam = resolve_lambda(beta, None, eta)
    ones = np.ones(simulations)
    fits = fit_points(beta * ones, w * ones, lam * ones, config=FitConfig(starts=4, seed=config.seed), space=space,
                      likelihood=likelihood, data=data)
    z0 = jnp.asarray(unconstrained(posterior, np.asarray(fits["params"])[:, free]))
    data = jnp.asarray(data)
    modes, _, neg_hessians, _ = jax.vmap(lambda d, z: find_mode(posterior.with_data(d), z))(data, z0)
    L = jnp.asarray(np.stack([whitening(h) for h in np.asarray(neg_hessians)]))
    y0 = jnp.asarray(1.5 * rng.standard_normal((simulations, config.chains, len(names))))
    keys = jax.random.split(jax.random.key(config.seed), simulations)
    max_bits = hmc._max_bits(config)

    def one(d, mode, factor, y, key):
        post = posterior.with_data(d)
        states, step, mean_steps, _ = hmc.chees_warmup(post, mode, factor, y, jax.random.fold_in(key, 0), 0.5,
                                                       steps=config.warmup, max_bits=max_bits)
        _, ys, divergent, _, _ = hmc.chees_block(post, mode, factor, states, jax.random.fold_in(key, 1), step,
                                                 mean_steps, draws=config.draws, max_bits=max_bits)
        x, _, _ = hmc.natural_draws(post, mode, factor, ys)
        return x, jnp.sum(divergent)

    draws, divergent = jax.vmap(one)(data, modes, L, y0, keys)
    draws = np.asarray(draws).reshape(simulations, -1, len(names))
    ranks = np.sum(draws < truth[:, None, :], axis=1)
    per = {}
    for j, name in enumerate(names):
        counts, p = rank_uniformity(ranks[:, j], draws.shape[1], bins)
        per[name] = {"histogram": counts.tolist(), "p_uniform": p}
    return {"names": names, "simulations": simulations, "draws_per_simulation": int(draws.shape[1]),
            "bins": bins, "parameters": per, "ranks": ranks, "truth": truth, "draws": draws,
            "divergences": int(np.sum(np.asarray(divergent))), "scale_spread": scale_spread,
            "sampler": {"chains": config.chains, "draws": config.draws, "warmup": config.warmup, "seed": config.seed}}
