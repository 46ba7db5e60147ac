"""The compiled fit kernels: every start of every point of a batch in one call.

Gradient fits run as flat lanes, one (point, start) pair each, vmapped; a fit
of one point with 8 starts, a 64-point scan chunk and a benchmark batch all
use the same kernel, padded to a power-of-two lane bucket (see compiled.py).
Differential evolution runs one instance per point.  Host code here is NumPy:
it expands points into lanes, pads, and cuts the padding off again.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.numerics import AbstractNumerics
from .compiled import bucket, call_compiled
from .optimize import DEConfig, LMConfig, differential_evolution, projected_levenberg_marquardt
from .optimize.lm import projected_gradient_norm
from .optimize.starts import latin_hypercube_points, point_hash
from .params import ParameterSpace
from .problem import Problem
from .sharding import shard_points

# Smallest lane bucket: one point's default 8 starts.
MIN_LANES = 8
SOLUTION_FIELDS = ("u_starts", "chi2_starts", "pgrad_starts", "steps_starts", "done_starts",
                   "de_chi2", "de_generations", "de_converged")


def run_points(name: str, body, mesh, numerics: AbstractNumerics, point_args: tuple, shared: tuple) -> dict:
    """body(numerics, *point_args, *shared) over the points axis: exported on one device, sharded on several."""
    if mesh is None:
        return call_compiled(name, _apply, body, numerics, point_args, shared)
    return _sharded(body, mesh, numerics, point_args, shared)


def _apply(body, numerics, point_args, shared):
    return body(numerics, *point_args, *shared)


@eqx.filter_jit
def _sharded(body, mesh, numerics, point_args, shared):
    return shard_points(lambda num, *args: body(num, *args, *shared), mesh, numerics, *point_args)


def padded_size(n: int, smallest: int, mesh) -> int:
    size = bucket(n, smallest)
    if mesh is not None:
        devices = mesh.devices.size
        size = math.ceil(size / devices) * devices
    return size


def pad_index(n: int, size: int) -> np.ndarray:
    """Indices 0..n-1, then the last one repeated: padding lanes redo a real input."""
    return np.minimum(np.arange(size), n - 1)


def _gradient_lanes(numerics, beta, w, lam, starts, problem: Problem, lm: LMConfig) -> dict:
    def one(num, b, ww, l, u0):
        return projected_levenberg_marquardt(lambda u: problem.residuals(u, b, ww, l, num), u0,
                                             problem.box.fixed, lm)

    res = eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0))(numerics, beta, w, lam, starts)
    return {"u": res.u, "chi2": res.chi2, "pgrad": res.projected_gradient, "steps": res.steps,
            "done": res.converged}


def _de_points(numerics, beta, w, lam, keys, problem: Problem, de: DEConfig) -> dict:
    n = problem.box.lower.shape[0]
    fixed = problem.box.fixed

    def one(num, b, ww, l, key):
        residuals = lambda u: problem.residuals(u, b, ww, l, num)  # noqa: E731
        result = differential_evolution(lambda u: jnp.sum(residuals(u) ** 2), n, key, fixed, de)
        g = 2.0 * jax.jacfwd(residuals)(result.u).T @ residuals(result.u)
        pg = projected_gradient_norm(result.u, g / jnp.maximum(result.chi2, 1e-300), fixed)
        return {"u": result.u, "chi2": result.chi2, "generations": result.generations,
                "converged": result.converged, "pgrad": pg}

    return eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0))(numerics, beta, w, lam, keys)


def solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                 method: str, lm: LMConfig, de: DEConfig, mesh=None) -> dict:
    """Fit P points: starts (P, S, n) in unit coordinates, keys (P, 2) uint32 for DE.

    Returns host arrays named by SOLUTION_FIELDS, per point and start.  With a
    device mesh, points are split over its devices (see sharding.py).
    """
    beta, w, lam = (np.asarray(v, dtype=np.float64) for v in (beta, w, lam))
    starts = np.array(starts, dtype=np.float64)
    P, S, n = starts.shape
    if method in ("de", "de+gradient"):
        size = padded_size(P, 1, mesh)
        idx = pad_index(P, size)
        out = run_points("de", _de_points, mesh, numerics.select(idx),
                         (beta[idx], w[idx], lam[idx], np.asarray(keys)[idx]), (problem, de))
        out = {k: np.asarray(v)[:P] for k, v in out.items()}
        de_info = {"de_chi2": out["chi2"], "de_generations": out["generations"], "de_converged": out["converged"]}
        if method == "de":
            return {"u_starts": out["u"][:, None], "chi2_starts": out["chi2"][:, None],
                    "pgrad_starts": out["pgrad"][:, None], "steps_starts": out["generations"][:, None],
                    "done_starts": out["converged"][:, None], **de_info}
        starts[:, 0] = out["u"]
    else:
        de_info = {"de_chi2": np.full(P, np.nan), "de_generations": np.zeros(P, np.int32),
                   "de_converged": np.zeros(P, bool)}
    lanes = P * S
    size = padded_size(lanes, MIN_LANES, mesh)
    lane_point = np.repeat(np.arange(P), S)[pad_index(lanes, size)]
    flat_starts = starts.reshape(lanes, n)[pad_index(lanes, size)]
    out = run_points("lm", _gradient_lanes, mesh, numerics.select(lane_point),
                     (beta[lane_point], w[lane_point], lam[lane_point], flat_starts), (problem, lm))
    per_point = lambda a: np.asarray(a)[:lanes].reshape((P, S) + np.shape(a)[1:])  # noqa: E731
    return {"u_starts": per_point(out["u"]), "chi2_starts": per_point(out["chi2"]),
            "pgrad_starts": per_point(out["pgrad"]), "steps_starts": per_point(out["steps"]),
            "done_starts": per_point(out["done"]), **de_info}


def initial_starts(space: ParameterSpace, count: int, point_ids, seed: int):
    """Latin-hypercube starts (P, S, n) and DE keys (P, 2) for the given global point ids.

    Each point's randomness depends only on (seed, point id), so a scan gives
    the same answer however it is chunked, sharded or resumed.
    """
    point_ids = np.asarray(point_ids)
    starts = latin_hypercube_points(seed, point_ids, max(count, 1), space.size)
    starts[..., space.fixed] = 0.0
    keys = (point_hash(seed, point_ids, 2, (2,)) >> np.uint64(32)).astype(np.uint32)
    return starts, keys
