"""Differential evolution in JAX, the seed's optimiser as a baseline.

SciPy's `differential_evolution` defaults as the seed used them: strategy
best1bin, popsize 15 (times the number of parameters), mutation dithered in
(0.5, 1) once per generation, recombination 0.7, Latin-hypercube initial
population, out-of-bounds components re-drawn uniformly, convergence when
std(population chi^2) <= atol + tol * |mean|.  One difference, on purpose: the
whole population is updated at once (SciPy's updating='deferred'), so a
generation is one vmapped evaluation.  Many instances (one per grid point) run
together under vmap; each stops when its own population converges.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .starts import latin_hypercube


class DEConfig(eqx.Module):
    popsize: int = eqx.field(static=True, default=15)
    maxiter: int = eqx.field(static=True, default=1000)
    mutation: tuple[float, float] = eqx.field(static=True, default=(0.5, 1.0))
    recombination: float = 0.7
    tol: float = 0.01
    atol: float = 0.0


class DEResult(eqx.Module):
    u: Float[Array, " n"]
    chi2: Float[Array, ""]
    generations: Int[Array, ""]
    converged: Bool[Array, ""]
    evaluations: Int[Array, ""]


class _State(eqx.Module):
    population: Array
    energies: Array
    key: Array
    generation: Array
    converged: Array


def differential_evolution(objective, n: int, key, fixed, config: DEConfig = DEConfig()) -> DEResult:
    """Minimise objective(u) over [0, 1]^n; `fixed` coordinates are pinned to 0."""
    size = config.popsize * n
    batch_objective = jax.vmap(objective)

    def converged(energies):
        return jnp.std(energies) <= config.atol + config.tol * jnp.abs(jnp.mean(energies))

    def generation(state: _State) -> _State:
        key, k_f, k_idx, k_cross, k_jrand, k_redraw = jax.random.split(state.key, 6)
        pop, energies = state.population, state.energies
        best = pop[jnp.argmin(energies)]
        lo, hi = config.mutation
        F = jax.random.uniform(k_f, (), minval=lo, maxval=hi)
        # Two distinct partners, both different from the member itself.
        i = jnp.arange(size)
        d = jax.random.randint(k_idx, (2, size), 1, jnp.array([[size], [size - 1]]))
        d2 = jnp.where(d[1] >= d[0], d[1] + 1, d[1])
        r1, r2 = (i + d[0]) % size, (i + d2) % size
        mutant = best + F * (pop[r1] - pop[r2])
        cross = jax.random.uniform(k_cross, (size, n)) < config.recombination
        j_rand = jax.random.randint(k_jrand, (size,), 0, n)
        cross = cross | (jnp.arange(n)[None, :] == j_rand[:, None])
        trial = jnp.where(cross, mutant, pop)
        outside = (trial < 0.0) | (trial > 1.0)
        trial = jnp.where(outside, jax.random.uniform(k_redraw, trial.shape), trial)
        trial = jnp.where(fixed, 0.0, trial)
        trial_energies = batch_objective(trial)
        better = trial_energies <= energies
        pop = jnp.where(better[:, None], trial, pop)
        energies = jnp.where(better, trial_energies, energies)
        return _State(pop, energies, key, state.generation + 1, converged(energies))

    def keep_going(state: _State):
        return (~state.converged) & (state.generation < config.maxiter)

    k_init, k_run = jax.random.split(key)
    pop = jnp.where(fixed, 0.0, latin_hypercube(k_init, size, n))
    energies = batch_objective(pop)
    init = _State(pop, energies, k_run, jnp.asarray(0), converged(energies))
    final = jax.lax.while_loop(keep_going, generation, init)
    best = jnp.argmin(final.energies)
    return DEResult(final.population[best], final.energies[best], final.generation, final.converged,
                    (final.generation + 1) * size)
