"""Profile-likelihood scans over (beta, w): every grid point a full converged fit.

Points are fitted in fixed-size chunks (one compilation), each chunk vmapped over
points x starts and sharded over all visible devices.  Every finished chunk is
written atomically to DIR/chunks/, so an interrupted scan loses at most the chunk
in flight; rerunning the same command resumes, and refuses to mix in chunks of a
different configuration.  After the grid, a neighbour pass refits every point
from its neighbours' optima, so profiles carry no fit-noise bumps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import signal
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .constants import ETA_DEFAULT, SEED_BETA_RANGE, SEED_W_RANGE, lambda_from_eta
from .errors import InputError, check_range
from .sharding import points_spec
from .fit import FitConfig, PointSolution, Problem, initial_starts, make_numerics, solve_points, summarize_points
from .io import run_metadata, write_json, write_npz
from .numerics import check_numerics_name
from .optimize import DEConfig, LMConfig
from .params import ParameterSpace
from .quadrature import SeedGridSpec

SOLUTION_FIELDS = [f.name for f in dataclasses.fields(PointSolution)]


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """Everything that determines a scan's numbers (hashed to guard resumes)."""

    beta: tuple[float, float, int] = SEED_BETA_RANGE
    w: tuple[float, float, int] = SEED_W_RANGE
    w_spacing: str = "log"
    eta: float = ETA_DEFAULT
    numerics: str = "exact"
    fit: FitConfig = FitConfig(starts=8)
    bounds: dict = dataclasses.field(default_factory=lambda: ParameterSpace.seed().as_dict())
    leptons: tuple[str, ...] = ("e", "mu", "tau")
    r_max: float = SeedGridSpec.r_max
    neighbour_passes: int = 3
    observables: tuple[str, ...] = ("mass",)
    shared: tuple[tuple[str, ...], ...] = ()
    profile: str = "boundary"
    power_s: float = 2.0

    def __post_init__(self):
        for name, (start, stop, n) in (("beta", self.beta), ("w", self.w)):
            check_range(f"{name} N", n, lower=1, integer=True)
            check_range(f"{name} START", start)
            check_range(f"{name} STOP", stop)
            if start > stop or (n > 1 and start == stop):
                raise InputError(f"{name} range START = {start} STOP = {stop} is invalid: "
                                 f"need START < STOP (or START == STOP with N = 1)")
        if self.w[0] <= 0:
            raise InputError(f"w START = {self.w[0]} is out of range: must be > 0")
        if self.w_spacing not in ("log", "linear"):
            raise InputError(f"w spacing = {self.w_spacing!r} is unknown: must be log or linear")
        check_numerics_name(self.numerics)
        check_range("eta", self.eta, lower=0.0)
        check_range("neighbour passes", self.neighbour_passes, lower=0, integer=True)
        self.likelihood()
        self.make_profile()
        self.space().check_domain(self.r_max, self.w[1])

    def likelihood(self):
        from .observables import build_likelihood

        return build_likelihood(self.leptons, self.observables)

    def make_profile(self):
        from .profiles import make_profile

        return make_profile(self.profile, self.power_s)

    def space(self) -> ParameterSpace:
        base = ParameterSpace.seed(self.leptons)
        return base.with_overrides({k: v for k, v in self.bounds.items()}, shared=self.shared)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        beta = np.linspace(self.beta[0], self.beta[1], int(self.beta[2]))
        if self.w_spacing == "log":
            w = np.geomspace(self.w[0], self.w[1], int(self.w[2]))
        else:
            w = np.linspace(self.w[0], self.w[1], int(self.w[2]))
        return beta, w

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["beta"], d["w"] = list(self.beta), list(self.w)
        d["leptons"] = list(self.leptons)
        d["observables"] = list(self.observables)
        d["shared"] = [list(g) for g in self.shared]
        return d

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "ScanConfig":
        d = dict(d)
        d["fit"] = FitConfig(**d.get("fit", {}))
        for key in ("beta", "w"):
            if key in d:
                start, stop, n = d[key]
                d[key] = (float(start), float(stop), int(n))
        for key in ("leptons", "observables"):
            if key in d:
                d[key] = tuple(d[key])
        if "shared" in d:
            d["shared"] = tuple(tuple(g) for g in d["shared"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"scan config has unknown keys {sorted(unknown)}: allowed are {sorted(known)}")
        return cls(**d)


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


class _Solver:
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


def _neighbours(nb: int, nw: int) -> np.ndarray:
    """(P, 4) flat indices of the +-beta and +-w neighbours (self where none)."""
    i, j = np.meshgrid(np.arange(nb), np.arange(nw), indexing="ij")
    out = []
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ii, jj = np.clip(i + di, 0, nb - 1), np.clip(j + dj, 0, nw - 1)
        out.append((ii * nw + jj).ravel())
    return np.stack(out, -1)


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
    solver = _Solver(config, B, W, lam, chunk)
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
    summary = _summarize_chunked(solver, chunks, solution)
    refit = {"passes": 0, "improved_points": 0, "max_improvement": 0.0}
    if point_range is None and config.neighbour_passes > 0:
        summary, refit = _neighbour_refit(solver, chunks, summary, nb, nw, config.neighbour_passes)
    timings["diagnostics_s"] = time.perf_counter() - t_diag
    timings["scan_s"] = time.perf_counter() - t_start

    record = _scan_record(config, beta_axis, w_axis, summary, (lo, hi), solver.space, refit, timings)
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


def _summarize_chunked(solver: _Solver, chunks, solution: dict) -> dict:
    parts, offset = [], 0
    for ids in chunks:
        sl = slice(offset, offset + ids.size)
        parts.append(solver.summarize(ids, {k: v[sl] for k, v in solution.items()}))
        offset += ids.size
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _neighbour_refit(solver: _Solver, chunks, summary: dict, nb, nw, passes: int):
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
        fresh = _summarize_chunked(solver, chunks, new)
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


def _scan_record(config, beta_axis, w_axis, s, point_range, space, refit, timings) -> dict:
    nb, nw = beta_axis.size, w_axis.size
    full = point_range == (0, nb * nw)
    shape = (nb, nw) if full else (-1,)
    names = space.names
    at_bound = s["at_lower"] | s["at_upper"]
    record = {
        "beta": beta_axis.tolist(),
        "w": w_axis.tolist(),
        "points": list(point_range),
        "param_names": list(names),
        "chi2": s["chi2"].reshape(shape).tolist(),
        "params": s["params"].reshape(shape + (len(names),) if full else (-1, len(names))).tolist(),
        "S": s["S"].reshape(shape).tolist(),
        "lam": lambda_from_eta(np.repeat(beta_axis, nw), config.eta)[point_range[0]:point_range[1]]
        .reshape(shape).tolist(),
        "convergence": {
            "converged": s["converged"].reshape(shape).tolist(),
            "starts_within_0.1": s["starts_within"].reshape(shape).tolist(),
            "projected_gradient_rel": s["projected_gradient"].reshape(shape).tolist(),
            "at_bounds": [[n for n, b in zip(names, row) if b] for row in at_bound],
            "neighbour_refit": refit,
        },
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "seeds": {"fit_seed": config.fit.seed, "per_point": "fold_in(PRNGKey(seed), flat point index)"},
        "timings": timings,
    }
    for key in s:
        if key.startswith("chi2_") and key not in ("chi2_starts", "chi2_spread"):
            record[key] = s[key].reshape(shape).tolist()
    record["beta_curvature"] = s["beta_curvature"].reshape(shape).tolist()
    if "C_g" in s:
        record["C_g"] = s["C_g"].reshape(shape).tolist()
    best = int(np.argmin(s["chi2"]))
    record["hessian_eigenvalues_at_min"] = [float(v) for v in s["hessian_eigenvalues"][best] if np.isfinite(v)]
    record |= run_metadata()
    return record


def merge_scans(dirs, out_dir, *, analyse: bool = True) -> dict:
    """Merge partial scans (run with point ranges on several hosts) into one."""
    records, arrays = [], []
    for d in dirs:
        d = Path(d)
        try:
            records.append(json.loads((d / "scan.json").read_text()))
        except FileNotFoundError:
            raise InputError(f"scan directory {str(d)!r} has no scan.json (not finished?)") from None
        arrays.append(dict(np.load(d / "scan.npz")))
    fingerprints = {r["fingerprint"] for r in records}
    if len(fingerprints) != 1:
        raise InputError(f"scans to merge have different configurations: fingerprints {sorted(fingerprints)}")
    config = ScanConfig.from_dict(records[0]["config"])
    beta_axis, w_axis = config.axes()
    total = beta_axis.size * w_axis.size
    ids = np.concatenate([a["point_ids"] for a in arrays])
    if np.unique(ids).size != ids.size or ids.size != total:
        raise InputError(f"partial scans cover {np.unique(ids).size} distinct of {total} points "
                         f"({ids.size - np.unique(ids).size} duplicated): need each point exactly once")
    order = np.argsort(ids)
    keys = [k for k in arrays[0] if k not in ("beta_axis", "w_axis", "point_ids")]
    merged = {k: np.concatenate([a[k] for a in arrays])[order] for k in keys}
    timings = {"scan_s": sum(r["timings"]["scan_s"] for r in records), "merged_from": len(records)}
    record = _scan_record(config, beta_axis, w_axis, merged, (0, total), config.space(),
                          {"passes": 0, "improved_points": 0, "max_improvement": 0.0}, timings)
    out = Path(out_dir)
    write_npz(out / "scan.npz", beta_axis=beta_axis, w_axis=w_axis, point_ids=np.arange(total), **merged)
    if analyse:
        from .analysis import analyse_scan
        from .plots import plot_scan

        record["analysis"] = analyse_scan(record)
        record["verdict"] = record["analysis"]["verdict"]
        record["plots"] = plot_scan(record, out)
    write_json(out / "scan.json", record)
    return record
