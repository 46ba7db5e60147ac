"""Merging partial scans run with point ranges on several hosts.

Parts skip the neighbour refit (a part does not see its neighbours across a
part boundary); the merge runs it over the whole grid, exactly as a one-host
scan does after its fits, so split + merge gives the one-host numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import check_output_dir
from ..model.constants import lambda_from_eta
from .checkpoint import ScanDirectory
from .config import ScanConfig


def _read_part(d: Path):
    from .result import read_scan_arrays, read_scan_record

    record = read_scan_record(d, "scan directory")
    return record, read_scan_arrays(d, record, "scan directory")


def _check_out_is_not_an_input(out: Path, dirs) -> None:
    import os

    for d in dirs:
        if os.path.exists(out) and os.path.samefile(out, d) or Path(os.path.abspath(out)) == Path(os.path.abspath(d)):
            raise InputError(f"out = {str(out)!r} is one of the scans to merge: give a new directory")


def merge_scans(dirs, out_dir, *, analyse: bool = True):
    """Merge partial scans (run with point ranges on several hosts) into one, then refit neighbours.

    Parameters
    ----------
    dirs : sequence of path
        The parts' directories (each a finished `run_scan(..., point_range=...)`); together they must
        cover every grid point once, with one configuration.
    out_dir : path
        Where the merged scan is written (not one of `dirs`).
    analyse : bool
        Find the minimum, intervals and verdict and draw the figures.

    Returns
    -------
    ScanResult"""
    from .refit import neighbour_refit
    from .scan import _finish
    from .solver import ChunkSolver

    if isinstance(dirs, (str, Path)) or not dirs:
        raise InputError(f"dirs = {dirs!r} is invalid: give a list of partial scan directories")
    out = check_output_dir(out_dir, "out")
    _check_out_is_not_an_input(out, dirs)
    parts = [_read_part(Path(d)) for d in dirs]
    records = [r for r, _ in parts]
    arrays = [a for _, a in parts]
    fingerprints = {r.get("fingerprint") for r in records}
    if len(fingerprints) != 1:
        raise InputError(f"scans to merge have different configurations: fingerprints {sorted(map(str, fingerprints))}")
    config = ScanConfig.from_dict(records[0]["config"])
    if config.fingerprint() != records[0]["fingerprint"]:
        raise InputError("scans to merge were written by another qfdjax version (config fingerprint differs)")
    beta_axis, w_axis = config.axes()
    nb, nw = beta_axis.size, w_axis.size
    total = nb * nw
    ids = np.concatenate([a["point_ids"] for a in arrays])
    if np.unique(ids).size != ids.size or ids.size != total:
        raise InputError(f"partial scans cover {np.unique(ids).size} distinct of {total} points "
                         f"({ids.size - np.unique(ids).size} duplicated): need each point exactly once")
    order = np.argsort(ids)
    keys = [k for k in arrays[0] if k not in ("beta_axis", "w_axis", "point_ids")]
    merged = {k: np.concatenate([a[k] for a in arrays])[order] for k in keys}
    t_merge = time.perf_counter()
    # The parts' own scan times are kept apart: a merge's time is what the merge took.
    timings = {"parts_scan_s": [float(r["timings"].get("scan_s", r["timings"].get("merge_s", 0.0))) for r in records], "merged_from": len(records)}
    stamp = {"fingerprint": config.fingerprint(), "config": config.to_dict(), "points": [0, total],
             "merged_from": [str(d) for d in dirs]}
    with ScanDirectory(out, config.fingerprint(), stamp):
        refit = {"passes": 0, "improved_points": 0, "max_improvement": 0.0}
        if config.neighbour_passes > 0:
            B, W = (a.ravel() for a in np.meshgrid(beta_axis, w_axis, indexing="ij"))
            solver = ChunkSolver(config, B, W, lambda_from_eta(B, config.eta), 64)
            merged, refit = neighbour_refit(solver, merged, nb, nw, config.neighbour_passes)
        timings["merge_s"] = time.perf_counter() - t_merge
        return _finish(config, out, beta_axis, w_axis, merged, (0, total), config.space(), refit, timings,
                       np.arange(total), analyse=analyse)
