"""The compiled fit kernel: every start of every point of a batch in one call.

DE runs one instance per point (vmapped); the gradient refinement runs every
(point, start) pair as one flat vmapped lane.  Random starts depend only on
(seed, global point id), so a scan gives the same numbers however it is
chunked, sharded or resumed.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ..model.numerics import AbstractNumerics
from .optimize import DEConfig, LMConfig, differential_evolution, latin_hypercube, projected_levenberg_marquardt
from .optimize.lm import projected_gradient_norm
from .params import ParameterSpace
from .problem import Problem
from .sharding import shard_points


class PointSolution(eqx.Module):
    """Per point: every start's outcome plus the best one's diagnostics."""

    u_starts: jax.Array  # (P, S, n)
    chi2_starts: jax.Array  # (P, S)
    pgrad_starts: jax.Array  # (P, S)
    steps_starts: jax.Array  # (P, S)
    done_starts: jax.Array  # (P, S)
    de_chi2: jax.Array  # (P,) nan without DE
    de_generations: jax.Array  # (P,)
    de_converged: jax.Array  # (P,)


@eqx.filter_jit
def solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                 method: str, lm: LMConfig, de: DEConfig, mesh=None) -> PointSolution:
    """Fit P points at once: starts (P, S, n) in unit coordinates, keys (P,) for DE.

    With a device mesh, points are split over its devices (see sharding.py).
    """
    return shard_points(
        lambda num, *args: _solve_points(problem, num, *args, method, lm, de), mesh, numerics,
        beta, w, lam, starts, keys)


def _solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                  method: str, lm: LMConfig, de: DEConfig) -> PointSolution:
    """The single-device body of solve_points.

    DE runs one instance per point (vmapped); the gradient refinement runs every
    (point, start) pair as one flat vmapped lane, which traces and compiles
    faster than nesting a vmap over starts inside a vmap over points.
    """
    fixed = jnp.asarray(problem.space.fixed)
    P, S, n = starts.shape
    # Every per-point input is mapped, never gathered by index: with points
    # sharded over devices, a gather would need cross-device collectives.
    axes = numerics.point_axes()

    def residual_fn(num, b, ww, l):
        return lambda u: problem.residuals(u, b, ww, l, num)

    if method in ("de", "de+gradient"):
        def one_de(num, b, ww, l, key):
            residuals = residual_fn(num, b, ww, l)
            return differential_evolution(lambda u: jnp.sum(residuals(u) ** 2), n, key, fixed, de)

        de_result = eqx.filter_vmap(one_de, in_axes=(axes, 0, 0, 0, 0))(numerics, beta, w, lam, keys)
        de_info = (de_result.chi2, de_result.generations, de_result.converged)
        if method == "de":
            def pgrad(num, b, ww, l, u, chi2):
                residuals = residual_fn(num, b, ww, l)
                g = 2.0 * jax.jacfwd(residuals)(u).T @ residuals(u)
                return projected_gradient_norm(u, g / jnp.maximum(chi2, 1e-300), fixed)

            pg = eqx.filter_vmap(pgrad, in_axes=(axes, 0, 0, 0, 0, 0))(
                numerics, beta, w, lam, de_result.u, de_result.chi2)
            return PointSolution(de_result.u[:, None], de_result.chi2[:, None], pg[:, None],
                                 de_result.generations[:, None], de_result.converged[:, None], *de_info)
        starts = starts.at[:, 0].set(de_result.u)
    else:
        de_info = (jnp.full(P, jnp.nan), jnp.zeros(P, jnp.int32), jnp.zeros(P, bool))

    def one_lane(num, b, ww, l, u0):
        return projected_levenberg_marquardt(residual_fn(num, b, ww, l), u0, fixed, lm)

    lane = lambda a: jnp.repeat(a, S, axis=0)
    lanes = eqx.filter_vmap(one_lane, in_axes=(axes, 0, 0, 0, 0))(
        numerics.repeat(S), lane(beta), lane(w), lane(lam), starts.reshape(P * S, n))
    per_point = lambda a: a.reshape((P, S) + a.shape[1:])
    return PointSolution(per_point(lanes.u), per_point(lanes.chi2), per_point(lanes.projected_gradient),
                         per_point(lanes.steps), per_point(lanes.converged), *de_info)



def initial_starts(space: ParameterSpace, count: int, point_ids, seed: int):
    """Latin-hypercube starts (P, S, n) and DE keys (P,) for the given global point ids.

    Each point's randomness depends only on (seed, point id), so a scan gives
    the same answer however it is chunked, sharded or resumed.
    """
    starts, keys = _starts_for_points(jnp.asarray(point_ids), seed, max(count, 1), space.size)
    return jnp.where(jnp.asarray(space.fixed), 0.0, starts), keys


@functools.partial(jax.jit, static_argnums=(2, 3))
def _starts_for_points(point_ids, seed, count: int, dim: int):
    root = jax.random.PRNGKey(seed)
    keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(root, i)))(point_ids)
    starts = jax.vmap(lambda k: latin_hypercube(k, count, dim))(keys[:, 0])
    return starts, keys[:, 1]
