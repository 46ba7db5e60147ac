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


def neighbour_refit(solver: ChunkSolver, chunks, summary: dict, nb, nw, passes: int):
    """Refit each point from its neighbours' optima until no point improves."""
    neighbours = _neighbours(nb, nw)
    improved_total, max_gain, done_passes = 0, 0.0, 0
    for _ in range(passes):
        u = summary["u"]
        candidates = np.concatenate([u[:, None, :], u[neighbours]], axis=1)
        # Pad to the main pass's start count so the compiled solver is reused.
        starts = max(solver.config.fit.gradient_starts, 1)
        if candidates.shape[1] < starts:
            candidates = np.concatenate(
                [candidates, np.repeat(u[:, None, :], starts - candidates.shape[1], 1)], 1)
        new = {k: [] for k in SOLUTION_FIELDS}
        offset = 0
        for ids in chunks:
            sl = slice(offset, offset + ids.size)
            res = solver.solve(ids, starts=candidates[sl], method="gradient")
            for k in SOLUTION_FIELDS:
                new[k].append(res[k])
            offset += ids.size
        new = {k: np.concatenate(v) for k, v in new.items()}
        fresh = summarize_chunked(solver, chunks, new)
        gain = summary["chi2"] - fresh["chi2"]
        # Improvements below rounding of chi^2 are not improvements.
        better = gain > 1e-10 * np.abs(summary["chi2"]) + 1e-9
        done_passes += 1
        if not better.any():
            break
        improved_total += int(better.sum())
        max_gain = max(max_gain, float(gain[better].max()))
        for key, value in fresh.items():
            # Per-start arrays keep the original (independent) starts; everything
            # else, convergence evidence included, comes from the better refit.
            if value.shape != summary[key].shape:
                continue
            summary[key] = np.where(better.reshape((-1,) + (1,) * (value.ndim - 1)), value, summary[key])
    return summary, {"passes": done_passes, "improved_points": improved_total, "max_improvement": max_gain}
