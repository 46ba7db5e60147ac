"""Hamiltonian Monte Carlo with BlackJAX, every chain a lane of one compiled call.

Two samplers, chosen by measurement (benchmarks/sampler_comparison.py):

- "chees" (default): jittered HMC whose step size and trajectory length are adapted across all
  chains at once (Hoffman, Radul & Sountsov 2021).  Every chain takes the same number of leapfrog
  steps at each iteration (a shared Halton jitter), so lanes never wait for one another.
- "nuts": NUTS with Stan's window adaptation per chain.  Each chain's tree depth differs, and in
  lanes every chain waits for the deepest: it costs more per draw, but needs no tuning across chains.

Draws are taken in blocks (one compiled call each) so a long run reports progress and
checkpoints between blocks; a block's randomness depends only on (seed, block index), so a
resumed run gives the same draws as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, check_range
from .posterior import Posterior

SAMPLERS = ("chees", "nuts")
# ChEES' optimiser for the trajectory length: Adam at the rate the ChEES paper and BlackJAX's example use.
CHEES_LEARNING_RATE = 0.025
MAX_LEAPFROG = 1000


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """How to sample: `chains` run as lanes; `warmup` adaptation steps, then `draws` per chain in compiled
    calls of `block` draws (progress and checkpoints between them); `method` "chees" or "nuts"; `seed` sets
    the starts and every transition (a resumed run gives the same draws)."""

    chains: int = 64
    draws: int = 1000
    warmup: int = 1000
    seed: int = 0
    method: str = "chees"
    block: int = 100  # draws per compiled call (progress and checkpoints come between blocks)

    def __post_init__(self):
        check_range("chains", self.chains, lower=2, upper=1_000_000, integer=True)
        check_range("draws", self.draws, lower=1, upper=10_000_000, integer=True)
        check_range("warmup", self.warmup, lower=10, upper=10_000_000, integer=True)
        check_range("seed", self.seed, lower=0, upper=2**32 - 1, integer=True)
        check_range("block", self.block, lower=1, upper=10_000_000, integer=True)
        if self.method not in SAMPLERS:
            raise InputError(f"sampler = {self.method!r} is unknown: must be one of {', '.join(SAMPLERS)}")

    @property
    def blocks(self) -> int:
        return math.ceil(self.draws / self.block)


def whitened(posterior: Posterior, mode, L):
    """log p in y, z = mode + L y."""
    return lambda y: posterior.log_density(mode + L @ y)


def _max_bits(config: SamplerConfig) -> int:
    return int(np.ceil(np.log2(config.warmup + config.draws)))


def _jittered_steps(max_bits: int):
    from blackjax.mcmc.dynamic_hmc import halton_sequence

    return lambda i, mean_steps: jnp.asarray(jnp.ceil(halton_sequence(i, max_bits) * mean_steps), dtype=int)


@eqx.filter_jit
def chees_warmup(posterior: Posterior, mode, L, y0, key, step_size, *, steps: int, max_bits: int):
    """ChEES adaptation over all chains; returns the chains' states and the tuned (step size, mean steps)."""
    import blackjax
    import optax

    chains = y0.shape[0]
    warmup = blackjax.chees_adaptation(whitened(posterior, mode, L), chains, max_leapfrog_steps=MAX_LEAPFROG)
    # run() draws its jitter from a Halton sequence of 2^max_bits entries: the sampler below continues it.
    (states, parameters), info = warmup.run(key, y0, step_size, optax.adam(CHEES_LEARNING_RATE), steps,
                                            max_sampling_steps=2**max_bits - steps)
    mean_steps = parameters["integration_steps_params"][0]
    return states, parameters["step_size"], mean_steps, jnp.mean(info.info.is_divergent)


@eqx.filter_jit
def chees_block(posterior: Posterior, mode, L, states, key, step_size, mean_steps, *, draws: int, max_bits: int):
    """`draws` jittered-HMC transitions of every chain; returns states, positions (chains, draws, d), divergences."""
    from blackjax.mcmc import dynamic_hmc

    kernel = dynamic_hmc.build_kernel(next_random_arg_fn=lambda i: i + 1,
                                      integration_steps_fn=_jittered_steps(max_bits))
    logdensity = whitened(posterior, mode, L)
    inverse_mass = jnp.ones(mode.shape[0])

    def one(states, k):
        keys = jax.random.split(k, states.position.shape[0])
        new, info = jax.vmap(lambda kk, s: kernel(kk, s, logdensity, step_size, inverse_mass, (mean_steps,)))(
            keys, states)
        return new, (new.position, info.is_divergent, info.acceptance_rate, new.logdensity)

    states, (positions, divergent, acceptance, logdensity_values) = jax.lax.scan(one, states,
                                                                                 jax.random.split(key, draws))
    swap = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731 -- (draws, chains) -> (chains, draws)
    return states, swap(positions), swap(divergent), swap(acceptance), swap(logdensity_values)


@eqx.filter_jit
def nuts_warmup(posterior: Posterior, mode, L, y0, keys, *, steps: int):
    """Stan's window adaptation, one per chain (vmapped)."""
    import blackjax

    logdensity = whitened(posterior, mode, L)

    def adapt(y, key):
        warmup = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, parameters), _ = warmup.run(key, y, num_steps=steps)
        return state, parameters["step_size"], parameters["inverse_mass_matrix"]

    return jax.vmap(adapt)(y0, keys)


@eqx.filter_jit
def nuts_block(posterior: Posterior, mode, L, states, key, step_size, inverse_mass, *, draws: int):
    import blackjax

    logdensity = whitened(posterior, mode, L)

    def one(states, k):
        keys = jax.random.split(k, states.position.shape[0])
        new, info = jax.vmap(lambda kk, s, eps, m: blackjax.nuts.build_kernel()(kk, s, logdensity, eps, m))(
            keys, states, step_size, inverse_mass)
        return new, (new.position, info.is_divergent, info.acceptance_rate, new.logdensity, info.num_integration_steps)

    states, out = jax.lax.scan(one, states, jax.random.split(key, draws))
    return (states,) + tuple(jnp.swapaxes(a, 0, 1) for a in out)


@eqx.filter_jit
def natural_draws(posterior: Posterior, mode, L, y):
    """Natural values, chi²_min(S*) and S* of whitened draws (..., d)."""
    flat = y.reshape(-1, y.shape[-1])
    z = mode + flat @ L.T
    x = jax.vmap(posterior.natural)(z)
    chi2, scale = jax.vmap(posterior.chi2_and_scale)(z)
    lead = y.shape[:-1]
    return x.reshape(lead + (-1,)), chi2.reshape(lead), scale.reshape(lead)
