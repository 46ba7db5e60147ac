"""Profile-likelihood scans over (beta, w): every grid point a full converged fit.

Points are fitted in fixed-size chunks (one compilation), each chunk vmapped over
points x starts and sharded over all visible devices.  Every finished chunk is
written atomically to DIR/chunks/, so an interrupted scan loses at most the chunk
in flight; rerunning the same command resumes, and refuses to mix in chunks of a
different configuration.  After the grid, a neighbour pass refits every point
from its neighbours' optima, so profiles carry no fit-noise bumps.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, check_range
from ..io import write_json, write_npz
from ..model.constants import lambda_from_eta
from .config import ScanConfig
from .record import scan_record
from .refit import neighbour_refit, summarize_chunked
from ..fitting.kernel import SOLUTION_FIELDS
from .solver import ChunkSolver


class _Progress:
    def __init__(self, total, done, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="pt", desc="scan", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.3)

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _sigterm_as_interrupt():
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        return None


def run_scan(config: ScanConfig, out_dir, *, chunk: int = 64, progress: bool = True,
             point_range: tuple[int, int] | None = None, analyse: bool = True) -> dict:
    """Run (or resume) a scan into out_dir; returns the scan record (also saved as scan.json).

    point_range=(start, stop) fits only those flat point indices (row-major over
    beta x w): for splitting one grid across hosts, merged by `merge_scans`.
    """
    check_range("chunk", chunk, lower=1, integer=True)
    out = Path(out_dir)
    beta_axis, w_axis = config.axes()
    nb, nw = beta_axis.size, w_axis.size
    total = nb * nw
    lo, hi = point_range if point_range is not None else (0, total)
    if not (0 <= lo < hi <= total):
        raise InputError(f"points = {lo}:{hi} is out of range: must satisfy 0 <= START < STOP <= {total}")
    B, W = (a.ravel() for a in np.meshgrid(beta_axis, w_axis, indexing="ij"))
    lam = lambda_from_eta(B, config.eta)

    chunk_dir = out / "chunks"
    stamp = {"fingerprint": config.fingerprint(), "config": config.to_dict(), "points": [lo, hi]}
    stamp_path = out / "scan_config.json"
    if stamp_path.exists():
        previous = json.loads(stamp_path.read_text())
        if previous.get("fingerprint") != stamp["fingerprint"] or previous.get("points") != stamp["points"]:
            raise InputError(
                f"out = {str(out)!r} holds a scan with a different configuration "
                f"(fingerprint {previous.get('fingerprint')} vs {stamp['fingerprint']}): refusing to mix "
                f"results; use a new --out or delete that directory"
            )
    else:
        write_json(stamp_path, stamp)

    t_start = time.perf_counter()
    solver = ChunkSolver(config, B, W, lam, chunk)
    ids_all = np.arange(lo, hi)
    chunks = [ids_all[i:i + solver.chunk] for i in range(0, ids_all.size, solver.chunk)]
    have = {int(p.stem.split("_")[1]) for p in chunk_dir.glob("chunk_*.npz")} if chunk_dir.exists() else set()
    done_points = sum(chunks[c].size for c in have if c < len(chunks))
    bar = _Progress(ids_all.size, done_points, progress)
    previous_handler = _sigterm_as_interrupt()
    timings = {"resumed_points": done_points}
    try:
        t_fit = time.perf_counter()
        for c, ids in enumerate(chunks):
            if c in have:
                continue
            result = solver.solve(ids)
            write_npz(chunk_dir / f"chunk_{c:06d}.npz", ids=ids, **result)
            bar.update(ids.size)
        timings["fit_s"] = time.perf_counter() - t_fit
    finally:
        bar.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

    solution = {k: [] for k in SOLUTION_FIELDS}
    for c in range(len(chunks)):
        with np.load(chunk_dir / f"chunk_{c:06d}.npz") as data:
            for k in SOLUTION_FIELDS:
                solution[k].append(data[k])
    solution = {k: np.concatenate(v) for k, v in solution.items()}

    t_diag = time.perf_counter()
    summary = summarize_chunked(solver, chunks, solution)
    refit = {"passes": 0, "improved_points": 0, "max_improvement": 0.0}
    if point_range is None and config.neighbour_passes > 0:
        summary, refit = neighbour_refit(solver, summary, nb, nw, config.neighbour_passes)
    timings["diagnostics_s"] = time.perf_counter() - t_diag
    timings["scan_s"] = time.perf_counter() - t_start

    record = scan_record(config, beta_axis, w_axis, summary, (lo, hi), solver.space, refit, timings)
    arrays = {k: v for k, v in summary.items() if isinstance(v, np.ndarray)}
    write_npz(out / "scan.npz", beta_axis=beta_axis, w_axis=w_axis, point_ids=ids_all, **arrays)
    if analyse and point_range is None:
        from .analysis import analyse_scan

        record["analysis"] = analyse_scan(record)
        record["verdict"] = record["analysis"]["verdict"]
    write_json(out / "scan.json", record)
    if analyse and point_range is None:
        from .plots import plot_scan

        record["plots"] = plot_scan(record, out)
        write_json(out / "scan.json", record)
    return record
