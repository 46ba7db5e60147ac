"""One compiled point solver per chunk size, sharded over all visible devices."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..fitting.diagnostics import summarize_points
from ..fitting.kernel import PointSolution, initial_starts, solve_points
from ..fitting.optimize import DEConfig, LMConfig
from ..fitting.problem import Problem, make_numerics
from ..fitting.sharding import points_spec
from ..model.quadrature import SeedGridSpec
from .config import ScanConfig

SOLUTION_FIELDS = [f.name for f in dataclasses.fields(PointSolution)]


def _mesh_sharding():
    devices = jax.devices()
    if len(devices) == 1:
        return None, 1
    mesh = jax.sharding.Mesh(np.array(devices), ("points",))
    return mesh, len(devices)


def _put(x, mesh):
    if mesh is None:
        return jnp.asarray(x)
    return jax.device_put(jnp.asarray(x), jax.sharding.NamedSharding(mesh, points_spec(x)))


class ChunkSolver:
    """One compiled point solver for a fixed chunk size, sharded over devices."""

    def __init__(self, config: ScanConfig, beta_pts, w_pts, lam_pts, chunk: int):
        self.config = config
        self.space = config.space()
        self.problem = Problem(self.space, config.likelihood(), config.make_profile())
        self.numerics = make_numerics(config.numerics, w_pts, SeedGridSpec(r_max=config.r_max))
        self.points = (beta_pts, w_pts, lam_pts)
        self.mesh, ndev = _mesh_sharding()
        self.chunk = int(math.ceil(chunk / ndev) * ndev)
        fc = config.fit
        self.lm = LMConfig(max_steps=fc.max_steps)
        self.de = DEConfig(popsize=fc.de_popsize, maxiter=fc.de_maxiter, tol=fc.de_tol)

    def _pad(self, ids):
        ids = np.asarray(ids)
        return np.concatenate([ids, np.full(self.chunk - ids.size, ids[-1])]), ids.size

    def _args(self, padded):
        return [_put(p[padded], self.mesh) for p in self.points]

    def solve(self, ids, starts=None, method=None) -> dict:
        """Fit the points `ids` (<= chunk); starts (len(ids), S, n) override the defaults."""
        padded, count = self._pad(ids)
        fc = self.config.fit
        default_starts, keys = initial_starts(self.space, fc.gradient_starts, padded, fc.seed)
        if starts is None:
            starts = default_starts
        else:
            starts = np.concatenate([starts, np.repeat(starts[-1:], self.chunk - count, 0)])
        numerics = self.numerics.select(padded)
        sol = solve_points(self.problem, numerics, *self._args(padded), _put(starts, self.mesh),
                           _put(keys, self.mesh), method or fc.method, self.lm, self.de, self.mesh)
        return {name: np.asarray(getattr(sol, name))[:count] for name in SOLUTION_FIELDS}

    def summarize(self, ids, solution: dict) -> dict:
        padded, count = self._pad(ids)
        sol = PointSolution(**{k: jnp.asarray(np.concatenate([v, np.repeat(v[-1:], self.chunk - count, 0)]))
                               for k, v in solution.items()})
        out = summarize_points(self.problem, self.numerics.select(padded), *self._args(padded), sol, self.mesh)
        return {k: np.asarray(v)[:count] for k, v in out.items()}
