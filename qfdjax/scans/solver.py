"""One compiled point solver per chunk size, sharded over all visible devices."""

from __future__ import annotations

import math

import jax
import numpy as np

from ..fitting.diagnostics import prepare_diagnostics, summarize_points
from ..fitting.kernel import MIN_MANY_LANES, chi2_at, initial_starts, solve_points
from ..fitting.optimize import DEConfig, LMConfig
from ..fitting.problem import Problem, make_numerics
from ..model.quadrature import SeedGridSpec
from .config import ScanConfig



def _mesh_sharding():
    # This process's devices only: in a team (team.py) each process fits its own points.
    devices = jax.local_devices()
    if len(devices) == 1:
        return None, 1
    mesh = jax.sharding.Mesh(np.array(devices), ("points",))
    return mesh, len(devices)


# A scan's LM rounds never re-pack into fewer lanes than any run of more than one fit's lanes does, even a
# one-point scan of up to 8 starts: the 8-lane kernel is a single fit's, compiled for a quick start rather
# than speed (fitting/compiled.py), and a scan's numbers must not depend on which batch a lane's last
# rounds ran in.
SCAN_MIN_LANES = MIN_MANY_LANES


# Chunks when none is asked for: about AUTO_CHUNK_PARTS of them, each a power of two of points in AUTO_CHUNK_SIZES.
# Why: each chunk costs ~11 ms of host work (starts, packing, diagnostics' spectra, checkpoint) and its LM
# rounds end on a tail of slow lanes; a warm 256 x 256 scan took 53.8 s in chunks of 64 points, 36.2 s in
# chunks of 1024 and 34.3 s in chunks of 4096 (2 cores, the same numbers bitwise), but a cold one 5-6 s
# longer in chunks of 4096 (one more LM size to compile: 50.8 against 44.7-45.5 s); a warm 64 x 64 scan
# 4.77-5.12 s in chunks of 256 against 5.40-5.56 s in chunks of 64 (LM batches on a ladder of four).
AUTO_CHUNK_PARTS = 16
AUTO_CHUNK_SIZES = (64, 1024)


def auto_chunk(points: int) -> int:
    """Points per chunk for a scan of `points` points: points / AUTO_CHUNK_PARTS rounded up to a power of
    two, within AUTO_CHUNK_SIZES."""
    smallest, largest = AUTO_CHUNK_SIZES
    want = -(-max(int(points), 1) // AUTO_CHUNK_PARTS)
    return min(max(1 << (want - 1).bit_length(), smallest), largest)


class ChunkSolver:
    """Fits and diagnoses chunks of a scan's points, sharded over all devices.

    Chunks are cut on the host; the kernels pad each to its shape bucket (see
    fitting/kernel.py), so a short last chunk costs only its own bucket.
    """

    def __init__(self, config: ScanConfig, beta_pts, w_pts, lam_pts, chunk: int, diagnoses: bool = True):
        """diagnoses=False: this solver only fits (a team's process > 0): its diagnostics kernel is
        not readied in the background while it fits."""
        self.config = config
        self.diagnoses = diagnoses
        self.space = config.space()
        self.problem = Problem.build(self.space, config.likelihood(), config.make_profile())
        self.numerics = make_numerics(config.numerics, w_pts, SeedGridSpec(r_max=config.r_max))
        self.points = (beta_pts, w_pts, lam_pts)
        self.mesh, ndev = _mesh_sharding()
        self.device_count = ndev
        self.chunk = int(math.ceil(chunk / ndev) * ndev)
        fc = config.fit
        self.lm = LMConfig(max_steps=fc.max_steps)
        self.de = DEConfig(popsize=fc.de_popsize, maxiter=fc.de_maxiter, tol=fc.de_tol)

    def _args(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        beta, w, lam = (p[ids] for p in self.points)
        return beta, w, lam

    def split(self, ids, size: int | None = None) -> list[np.ndarray]:
        """`ids` cut into consecutive chunks of at most `size` (default `self.chunk`) points."""
        ids = np.asarray(ids)
        size = size or self.chunk
        return [ids[k:k + size] for k in range(0, ids.size, size)]

    def solve(self, ids, starts=None, method=None, min_lanes: int = SCAN_MIN_LANES) -> dict:
        """Fit the points `ids`; starts (len(ids), S, n) override the default Latin hypercube.

        min_lanes: the smallest lane bucket the LM rounds re-pack into (see kernel.run_lm_lanes).
        """
        ids = np.asarray(ids)
        fc = self.config.fit
        default_starts, keys = initial_starts(self.space, fc.gradient_starts, ids, fc.seed)
        if ids.size and self.diagnoses:
            prepare_diagnostics(self.problem, self.numerics.select(ids), *self._args(ids), self.mesh)
        return solve_points(self.problem, self.numerics.select(ids), *self._args(ids),
                            default_starts if starts is None else starts, keys, method or fc.method,
                            self.lm, self.de, self.mesh, min_lanes)

    def summarize(self, ids, solution: dict) -> dict:
        ids = np.asarray(ids)
        return summarize_points(self.problem, self.numerics.select(ids), *self._args(ids), solution, self.mesh)

    def chi2_of(self, ids, u) -> np.ndarray:
        """chi^2 of unit-box parameters u (len(ids), n) at the points ids, chunked to bound memory."""
        ids = np.asarray(ids)
        step = self.chunk * max(self.config.fit.gradient_starts, 1)
        parts = [chi2_at(self.problem, self.numerics.select(ids[k:k + step]), *self._args(ids[k:k + step]),
                         u[k:k + step], self.mesh) for k in range(0, ids.size, step)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def solve_all(self, ids, starts=None, method=None, min_lanes: int = SCAN_MIN_LANES) -> dict:
        """`solve` chunk by chunk, results concatenated in the order of `ids`."""
        parts = [self.solve(chunk, None if starts is None else starts[k * self.chunk:(k + 1) * self.chunk], method,
                            min_lanes)
                 for k, chunk in enumerate(self.split(ids))]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def summarize_all(self, ids, solution: dict) -> dict:
        """`summarize` chunk by chunk (bounded memory), results concatenated in the order of `ids`."""
        parts, offset = [], 0
        for chunk in self.split(ids):
            parts.append(self.summarize(chunk, {k: v[offset:offset + chunk.size] for k, v in solution.items()}))
            offset += chunk.size
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
