"""Profile-likelihood scans over (beta, w): every grid point a full converged fit.

Points are fitted in fixed-size chunks (one compilation), each chunk vmapped over
points x starts and sharded over all visible devices.  Every finished chunk is
written atomically to DIR/chunks/, so an interrupted scan loses at most the chunk
in flight; rerunning the same command resumes, and refuses to mix in chunks of a
different configuration.  After the grid, a neighbour pass refits every point
from its neighbours' optima, so profiles carry no fit-noise bumps.
"""

from __future__ import annotations

from typing import Any

import contextlib
import sys
import time

import numpy as np

from ..errors import InputError, check_range
from ..runtime import check_interrupted, interactive_progress, interrupts_remembered, spending, with_account
from ..fitting.resources import check_fit_memory
from ..io import check_output_dir, write_npz
from ..model.constants import lambda_from_eta
from .config import ScanConfig
from .digest import DIGEST_KEY, scan_pieces, stamp, write_scan_json
from .record import scan_record, write_scan_csv
from .result import ScanResult
from .refit import neighbour_refit
from ..fitting.kernel import SOLUTION_FIELDS
from .checkpoint import ChunkWriter, ScanDirectory, stderr_warning
from .plot_pool import PlotPool
from .solver import ChunkSolver, auto_chunk
from .team import Team


class _Progress:
    """A bar on a terminal; in a log file (batch jobs, team processes) a line every LOG_EVERY_S seconds."""

    LOG_EVERY_S = 30.0

    def __init__(self, total, done, enabled, team):
        self.bar, self.enabled = None, enabled
        self.total, self.done = total, done
        self.name = "scan" if team.size == 1 else f"scan [{team.label()}]"
        self.t0 = self.last = time.perf_counter()
        # Carriage returns of a bar are noise in a log file; in a Jupyter kernel (no terminal) tqdm.auto
        # draws a widget instead.
        if enabled and interactive_progress():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="pt", desc=self.name, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.3)

    def update(self, n):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.perf_counter() - self.last >= self.LOG_EVERY_S:
            self.last = time.perf_counter()
            print(f"qfdjax {self.name}: {self.done}/{self.total} points ({100 * self.done / max(self.total, 1):.0f} %), "
                  f"{self.last - self.t0:.0f} s", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def check_scan_size(config: ScanConfig, points: int, chunk: int) -> int:
    """Refuse, before any allocation, a scan that cannot fit in this machine's memory; returns the estimate."""
    fit = config.fit
    return check_fit_memory("scan", points, max(fit.gradient_starts, 1), config.space().size, chunk=chunk,
                            numerics=config.numerics, r_max=config.r_max, method=fit.method,
                            de_popsize=fit.de_popsize)


def _point_range(point_range, total: int) -> tuple[int, int]:
    if point_range is None:
        return 0, total
    try:
        lo, hi = (int(v) for v in point_range)
    except (TypeError, ValueError):
        raise InputError(f"points = {point_range!r} is invalid: must be (START, STOP) integers") from None
    if not (0 <= lo < hi <= total):
        raise InputError(f"points = {lo}:{hi} is out of range: must satisfy 0 <= START < STOP <= {total}")
    return lo, hi


def scan(beta=(2.95, 3.25, 16), w=(0.005, 0.05, 10), *, out, config=None, bounds=None, observables=None,
         leptons=None, numerics=None, eta=None, method=None, starts=None, seed=None, chunk: int | None = None,
         progress: bool = True) -> ScanResult:
    """A profile scan with the command line's keywords: ``qfdjax.scan(beta=(3.0, 3.2, 9), out="runs/s")``.

    Parameters
    ----------
    beta, w : (start, stop, n)
        The grid's axes (w log-spaced unless the config says otherwise).
    out : str or Path
        The scan directory (resumable, like `qfdjax scan --out`).
    config, bounds : str or Path, optional
        A scan TOML (as ``--config``) and a bounds TOML (as ``--bounds``).
    observables, leptons : sequence of str, optional
    numerics, eta, method, starts, seed
        As the command's flags; None keeps the config's (or the default).

    Returns
    -------
    ScanResult
    """
    from ..errors import read_toml
    from .config import scan_config_from_mapping

    data = read_toml(config, "config") if config is not None else {}
    data["beta"], data["w"] = list(beta), list(w)
    for name, value in (("observables", observables), ("leptons", leptons), ("numerics", numerics), ("eta", eta)):
        if value is not None:
            data[name] = list(value) if name in ("observables", "leptons") else value
    fit = dict(data.get("fit", {}))
    fit.update({k: v for k, v in (("method", method), ("starts", starts), ("seed", seed)) if v is not None})
    if fit:
        data["fit"] = fit
    return run_scan(scan_config_from_mapping(data, bounds_file=bounds), out, chunk=chunk, progress=progress)


def run_scan(config: ScanConfig, out_dir, *, chunk: int | None = None, progress: bool = True,
             point_range: tuple[int, int] | None = None, analyse: bool = True, team: Team | None = None,
             figure_format: str = "png") -> ScanResult:
    """Run (or resume) a profile-likelihood scan over a (beta, w) grid into `out_dir`.

    Everything is validated before the directory is touched; the directory is then held
    exclusively until the record is written. Finished chunks are checkpointed: rerunning the
    same call resumes, and a directory of another configuration is refused.

    Parameters
    ----------
    config : ScanConfig
        The grid, numerics, bounds, observables and fit settings.
    out_dir : str or Path
        Output directory (scan.json, scan.npz, scan.csv, figures, chunks/).
    chunk : int, optional
        Points fitted per compiled call and checkpointed together (bounds memory; changes no number).
        Default `auto_chunk` of the points this call fits.
    progress : bool
        Show a progress bar (tqdm; a widget in Jupyter).
    point_range : (int, int), optional
        Fit only flat point indices start..stop-1 (row-major over beta x w), to split a grid
        across hosts; the parts are combined by `merge_scans`.
    analyse : bool
        Find the refitted minimum, the Delta chi^2 = 1 and 4 ends and the verdict, and plot.
    team : Team, optional
        From `qfdjax.scans.team.join`: every process of a jax.distributed team calls run_scan
        with the same arguments; each fits its share, process 0 writes, all return the result.
    figure_format : {"png", "pdf", "svg"}
        The figures' file format (vector formats for a paper).

    Returns
    -------
    ScanResult
        The scan record (also saved as scan.json): chi^2, parameters and convergence per point,
        the analysis and the verdict with its reasons; `plot_profile(name, ax)` draws it.
    """
    team = team or Team.solo()
    if chunk is not None:
        check_range("chunk", chunk, lower=1, integer=True)
    from .record import figure_files

    figure_files(figure_format)  # refused before any work
    if not isinstance(config, ScanConfig):
        raise InputError(f"config = {config!r} is invalid: must be a ScanConfig")
    # Sizes from the config, not from the axes: a grid too large for memory is refused before it exists.
    nb, nw = int(config.beta[2]), int(config.w[2])
    total = nb * nw
    lo, hi = _point_range(point_range, total)
    chunk = auto_chunk(hi - lo) if chunk is None else chunk
    check_scan_size(config, hi - lo, chunk)
    out = check_output_dir(out_dir, "out")
    beta_axis, w_axis = config.axes()
    B, W = (a.ravel() for a in np.meshgrid(beta_axis, w_axis, indexing="ij"))
    lam = lambda_from_eta(B, config.eta)
    fingerprint = config.fingerprint()
    stamp = {"fingerprint": fingerprint, "config": config.to_dict(), "points": [lo, hi], "chunk": chunk}

    t_start = time.perf_counter()
    ids_all = np.arange(lo, hi)
    plot_pool = PlotPool(fmt=figure_format) if analyse and point_range is None and team.lead else contextlib.nullcontext()
    try:
        with ScanDirectory(out, fingerprint, stamp, team) as directory, interrupts_remembered(), \
                plot_pool as pool:
            solver = ChunkSolver(config, B, W, lam, chunk, diagnoses=team.lead)
            have, saved = directory.read_chunks(ids_all, warn=stderr_warning if team.lead else _quiet)
            # Nobody writes a chunk before everyone has read: all must agree on what is missing.
            team.barrier("read")
            missing = np.setdiff1d(ids_all, have)
            # A team cuts by the same --chunk everywhere (device counts may differ between hosts).
            mine = solver.split(missing, chunk if team.size > 1 else None)[team.rank::team.size]
            mine_count = int(sum(ids.size for ids in mine))
            bar = _Progress(mine_count + (have.size if team.size == 1 else 0),
                            have.size if team.size == 1 else 0, progress, team)
            timings: dict[str, Any] = {"resumed_points": int(have.size)}
            id_parts, parts = [have], [saved] if have.size else []
            try:
                t_fit = time.perf_counter()
                with ChunkWriter(directory.write_chunk) as writer:
                    for ids in mine:
                        check_interrupted()  # an interrupt a callback swallowed still ends the run
                        team.check_abort()
                        result = solver.solve(ids)
                        writer.write(ids, result)
                        id_parts.append(ids)
                        parts.append(result)
                        bar.update(ids.size)
                timings["fit_s"] = time.perf_counter() - t_fit
            finally:
                bar.close()
            processes = _team_record(team, solver, mine_count, timings["fit_s"])
            if team.size > 1 and team.lead:
                timings["fit_s"] = max(p["fit_s"] for p in processes["per_process"])  # until the last finished
            if not team.lead:
                team.wait_for("finished")
                return ScanResult.load(out)
            if team.size > 1:
                # Every chunk, the other processes' too, read back and verified from the shared directory.
                have, saved = directory.read_chunks(ids_all, warn=stderr_warning)
                if have.size != ids_all.size:
                    raise InputError(f"out = {str(out)!r}: process 0 finds {have.size} of {ids_all.size} points "
                                     f"after every process finished: --out must be on a filesystem every "
                                     f"process shares")
                id_parts, parts = [have], [saved]
            # Every point of the range exactly once, in id order (saved and new chunks never overlap).
            order = np.argsort(np.concatenate(id_parts), kind="stable")
            solution = {key: np.concatenate([part[key] for part in parts])[order] for key in SOLUTION_FIELDS}

            t_diag = time.perf_counter()
            summary = solver.summarize_all(ids_all, solution)
            refit = {"passes": 0, "improved_points": 0, "max_improvement": 0.0}
            if point_range is None and config.neighbour_passes > 0:
                summary, refit = neighbour_refit(solver, summary, nb, nw, config.neighbour_passes)
            timings["diagnostics_s"] = time.perf_counter() - t_diag
            timings["scan_s"] = time.perf_counter() - t_start
            record = _finish(config, out, beta_axis, w_axis, summary, (lo, hi), solver.space, refit, timings,
                             ids_all, analyse=analyse and point_range is None, plotter=pool, processes=processes)
            team.publish("finished", True)
            return record
    except BaseException as err:
        team.abort(str(err) or type(err).__name__)
        raise


def _quiet(message: str) -> None:
    pass


def _team_record(team: Team, solver: ChunkSolver, fitted: int, fit_s: float) -> dict:
    """Who took part: processes, their devices, what each fitted (gathered by process 0)."""
    mine = {"process": team.rank, "devices": solver.device_count, "fitted_points": fitted, "fit_s": fit_s}
    if team.size == 1:
        return {"count": 1, "devices": solver.device_count, "per_process": [mine]}
    team.publish(f"fitted/{team.rank}", mine)
    if not team.lead:
        return {}
    everyone = team.gather("fitted")
    return {"count": team.size, "devices": sum(p["devices"] for p in everyone), "coordinator": team.coordinator,
            "per_process": everyone}


def _finish(config, out, beta_axis, w_axis, summary, point_range, space, refit, timings, ids_all, *,
            analyse: bool, plotter=None, processes: dict | None = None, figure_format: str = "png") -> ScanResult:
    """Write scan.npz, scan.json (with analysis and verdict) and the plots of a finished scan."""
    record = scan_record(config, beta_axis, w_axis, summary, point_range, space, refit, timings)
    if processes:
        record["processes"] = processes
    started = []
    if analyse and plotter is not None:
        from .analysis import analyse_scan

        # The figures that do not show the profile ends are drawn while those ends are refitted.
        with spending("io"):
            started = plotter.start(dict(record, analysis=analyse_scan(record)), out,
                                    ("parameter_maps", "identifiability", "chi2_map"))
    if analyse:
        from .intervals import refit_profile_intervals

        t_intervals = time.perf_counter()
        record["profile_intervals"] = refit_profile_intervals(config, beta_axis, w_axis, summary)
        record["timings"]["intervals_s"] = time.perf_counter() - t_intervals
        for total in ("scan_s", "merge_s"):
            if total in record["timings"]:
                record["timings"][total] += record["timings"]["intervals_s"]
    arrays = {k: v for k, v in summary.items() if isinstance(v, np.ndarray)}
    write_npz(out / "scan.npz", beta_axis=beta_axis, w_axis=w_axis, point_ids=ids_all, **arrays)
    pieces = scan_pieces(record)
    record[DIGEST_KEY] = stamp(record, out / "scan.npz", pieces)
    write_scan_csv(out / "scan.csv", record, summary, ids_all)
    if analyse:
        from .analysis import analyse_scan

        record["analysis"] = analyse_scan(record)
        record["verdict"] = record["analysis"]["verdict"]
    record["timings"] = with_account(record["timings"])
    write_scan_json(out / "scan.json", record, pieces)
    if analyse:
        t_plots = time.perf_counter()
        with spending("io"):
            if plotter is not None:
                record["plots"] = plotter.plot_scan(record, out, started)
            else:
                from .plots import plot_scan

                record["plots"] = plot_scan(record, out, figure_format)
        record["timings"]["plots_s"] = time.perf_counter() - t_plots
        record["timings"] = with_account(record["timings"])
        write_scan_json(out / "scan.json", record, pieces)
    return ScanResult(record)
