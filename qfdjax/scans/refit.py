"""Neighbour refit: every point refitted from its grid neighbours' optima.

Profiles must not carry fit-noise bumps: if a neighbour's optimum, used as a
start, beats a point's own fit, the point takes the better fit.
"""

from __future__ import annotations

import numpy as np

from ..fitting.kernel import SOLUTION_FIELDS
from .solver import ChunkSolver


def _neighbours(nb: int, nw: int) -> np.ndarray:
    """(P, 4) flat indices of the +-beta and +-w neighbours (self where none)."""
    i, j = np.meshgrid(np.arange(nb), np.arange(nw), indexing="ij")
    out = []
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ii, jj = np.clip(i + di, 0, nb - 1), np.clip(j + dj, 0, nw - 1)
        out.append((ii * nw + jj).ravel())
    return np.stack(out, -1)



def summarize_chunked(solver: ChunkSolver, chunks, solution: dict) -> dict:
    parts, offset = [], 0
    for ids in chunks:
        sl = slice(offset, offset + ids.size)
        parts.append(solver.summarize(ids, {k: v[sl] for k, v in solution.items()}))
        offset += ids.size
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def neighbour_refit(solver: ChunkSolver, summary: dict, nb, nw, passes: int):
    """Refit the points whose neighbours' optima beat their own fit, until none does.

    A screen first: every neighbour's optimum is scored at the point itself in
    one batched chi^2 evaluation (four per point, no fitting).  Only points
    that a neighbour's optimum already beats are refitted, from all their
    neighbours' optima.  On converged scans the screen usually finds nothing,
    and the pass costs a fraction of a fit instead of a second full fit.
    """
    neighbours = _neighbours(nb, nw)
    improved_total, max_gain, done_passes, refitted = 0, 0.0, 0, 0
    ids = np.arange(nb * nw)
    for _ in range(passes):
        done_passes += 1
        u = summary["u"]
        n = u.shape[1]
        scored = solver.chi2_of(np.repeat(ids, 4), u[neighbours].reshape(-1, n)).reshape(-1, 4)
        own = summary["chi2"]
        # Beating by less than rounding of chi^2 is not beating.
        beaten = np.any(scored < own[:, None] - (1e-10 * np.abs(own[:, None]) + 1e-9), axis=1)
        targets = np.flatnonzero(beaten)
        if targets.size == 0:
            break
        refitted += targets.size
        candidates = np.concatenate([u[targets, None, :], u[neighbours[targets]]], axis=1)
        parts = [solver.solve(targets[k:k + solver.chunk], starts=candidates[k:k + solver.chunk], method="gradient")
                 for k in range(0, targets.size, solver.chunk)]
        solution = {key: np.concatenate([part[key] for part in parts]) for key in SOLUTION_FIELDS}
        fresh = summarize_chunked(solver, [targets[k:k + solver.chunk] for k in range(0, targets.size, solver.chunk)],
                                  solution)
        gain = own[targets] - fresh["chi2"]
        better = gain > 1e-10 * np.abs(own[targets]) + 1e-9
        if not better.any():
            break
        improved_total += int(better.sum())
        max_gain = max(max_gain, float(gain[better].max()))
        rows = targets[better]
        for key, value in fresh.items():
            # Per-start arrays keep the original (independent) starts; everything
            # else, convergence evidence included, comes from the better refit.
            if value.shape[1:] != summary[key].shape[1:]:
                continue
            summary[key][rows] = value[better]
    return summary, {"passes": done_passes, "improved_points": improved_total, "max_improvement": max_gain,
                     "screened_points": int(ids.size), "refitted_points": int(refitted)}
