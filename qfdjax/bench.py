"""Throughput benchmarks: exact and reference energies, fits, scan points, vs the seed's method.

Steady state means after compilation, with `block_until_ready`, the median of
repeats; compile time is reported separately.  The seed's NumPy/SciPy method is
timed in the same run on the same machine.
"""

from __future__ import annotations

import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from .model.constants import lambda_from_eta
from .model.energy import lepton_energies
from .fitting.diagnostics import summarize_points
from .fitting.kernel import initial_starts, solve_points
from .fitting.problem import Problem, make_numerics
from .fitting.likelihood import Likelihood
from .model.numerics import reference_numerics
from .fitting.optimize import DEConfig, LMConfig
from .fitting.params import ParameterSpace
from .model.profiles import BoundaryLayer

RANGES = [(2.9, 3.3), (0.005, 0.05), (0.002, 0.02), (0.05, 1.5), (0.01, 0.2), (0.7, 1.0)]


def _random_cases(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, n) for lo, hi in RANGES]


def _timed(fn, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return compile_s, float(np.median(times))


def bench_exact_energies(batches, repeats=5):
    rows = []
    energy = jax.jit(lambda *a: lepton_energies(*a).total)
    for n in batches:
        args = [jnp.asarray(a) for a in _random_cases(n)]
        compile_s, t = _timed(lambda args=args: energy(*args), repeats)
        rows.append({"batch": n, "seconds": t, "energies_per_s": n / t, "compile_s": compile_s})
    return rows


def bench_reference_energies(n, repeats=3):
    cases = _random_cases(n)
    # Scans use a handful of distinct w; so does this benchmark.
    cases[1] = np.geomspace(0.005, 0.05, 10)[np.arange(n) % 10]
    numerics = reference_numerics(cases[1])
    energy = jax.jit(lambda num, beta, w, lam, R_c, U, A: lepton_energies(beta, w, lam, R_c, U, A, numerics=num).total)
    args = [jnp.asarray(a) for a in cases]
    compile_s, t = _timed(lambda: energy(numerics, *args), repeats)
    return {"batch": n, "seconds": t, "energies_per_s": n / t, "compile_s": compile_s,
            "grid_points": int(numerics.r.shape[0])}


def _scan_points(nb, nw):
    B, W = (a.ravel() for a in np.meshgrid(np.linspace(2.95, 3.25, nb), np.geomspace(0.005, 0.05, nw),
                                           indexing="ij"))
    return B, W, lambda_from_eta(B)


def bench_fits(points, starts=8, repeats=3, numerics_name="exact"):
    """Full converged fits (multistart LM + diagnostics) of `points` points in one call."""
    nb = int(np.ceil(np.sqrt(points)))
    B, W, lam = (a[:points] for a in _scan_points(nb, int(np.ceil(points / nb))))
    space = ParameterSpace.seed()
    problem = Problem.build(space, Likelihood.masses_only(), BoundaryLayer())
    num = make_numerics(numerics_name, W)
    starts_u, keys = initial_starts(space, starts, np.arange(points), 0)
    args = (B, W, lam)

    def run():
        sol = solve_points(problem, num, *args, starts_u, keys, "gradient", LMConfig(), DEConfig())
        return summarize_points(problem, num, *args, sol)["chi2"]

    compile_s, t = _timed(run, repeats)
    return {"points": points, "starts": starts, "seconds": t, "fits_per_s": points / t,
            "compile_s": compile_s}


def bench_seed_method(seconds=2.0):
    """The seed's NumPy/SciPy energies and chi^2 calls per second (needs SciPy)."""
    from .reference import seed_chi2, seed_energies

    cases = _random_cases(10_000, seed=1)
    t0 = time.perf_counter()
    count = 0
    while time.perf_counter() - t0 < seconds:
        seed_energies(*(c[count] for c in cases))
        count += 1
    energies_per_s = count / (time.perf_counter() - t0)
    params = [1.0, 0.03, 0.8, 0.2, 0.1, 0.9, 0.5, 0.08, 0.8]
    t0 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t0 < seconds:
        seed_chi2(params, 3.1, 0.015, lambda_from_eta(3.1))
        calls += 1
    chi2_per_s = calls / (time.perf_counter() - t0)
    # DESIGN.md: DE with max_iter 200 took ~27k objective calls per grid point.
    calls_per_point = 27_000
    return {"energies_per_s": energies_per_s, "chi2_calls_per_s": chi2_per_s,
            "de_calls_per_point_assumed": calls_per_point,
            "seconds_per_grid_point_estimated": calls_per_point / chi2_per_s}


def device_info(kind: str | None = None) -> dict:
    devices = jax.devices() if kind is None else jax.devices(kind)
    import jaxlib

    return {
        "platform": devices[0].platform, "device_kind": devices[0].device_kind, "device_count": len(devices),
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(), "processor": platform.processor(),
        "dtype": str(jnp.zeros(()).dtype),
    }


def run_bench(quick: bool = True, device: str | None = None, seed_method: bool = True) -> dict:
    t_start = time.perf_counter()
    ctx = jax.default_device(jax.devices(device)[0]) if device else _null()
    with ctx:
        batches = [100, 1_000, 10_000, 100_000] if quick else [100, 1_000, 10_000, 100_000, 1_000_000]
        exact = bench_exact_energies(batches, repeats=3 if quick else 7)
        reference = bench_reference_energies(1_000 if quick else 10_000)
        fits = bench_fits(32 if quick else 160, repeats=2 if quick else 3)
        scan = bench_fits(160, repeats=2 if quick else 3)
    result = {
        "device": device_info(device),
        "quick": quick,
        "energies_per_s": exact[-1]["energies_per_s"],
        "exact_energies": exact,
        "reference_energies": reference,
        "fits": fits,
        "scan_16x10": {**scan, "grid_points_per_s": scan["fits_per_s"]},
    }
    if seed_method:
        try:
            import scipy  # noqa: F401  (the seed's method needs it; qfdjax itself does not)
        except ImportError:
            seed_method = False
            result["seed_method_skipped"] = "SciPy is not installed: pip install 'qfdjax[reference]'"
    if seed_method:
        seed = bench_seed_method(1.0 if quick else 3.0)
        result["seed_method"] = seed
        result["ratios"] = {
            "exact_energies_vs_seed": result["energies_per_s"] / seed["energies_per_s"],
            "reference_energies_vs_seed": reference["energies_per_s"] / seed["energies_per_s"],
            "scan_point_vs_seed_de_point": scan["fits_per_s"] * seed["seconds_per_grid_point_estimated"],
        }
    result["timings"] = {"total_s": time.perf_counter() - t_start}
    return result


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def bench_summary(r: dict) -> str:
    d = r["device"]
    lines = [f"device: {d['device_kind']} x{d['device_count']} ({d['platform']}), jax {d['jax']}, "
             f"{d['cpus_usable']} usable CPU(s), dtype {d['dtype']}"]
    for row in r["exact_energies"]:
        lines.append(f"  exact energies  batch {row['batch']:>9,}: {row['energies_per_s']:>14,.0f} /s "
                     f"(compile {row['compile_s']:.2f} s)")
    ref = r["reference_energies"]
    lines.append(f"  reference energies batch {ref['batch']:,}: {ref['energies_per_s']:,.0f} /s "
                 f"({ref['grid_points']}-point seed grid)")
    f = r["fits"]
    lines.append(f"  fits ({f['starts']} starts, with diagnostics): {f['fits_per_s']:,.1f} /s "
                 f"(batch {f['points']}, compile {f['compile_s']:.2f} s)")
    s = r["scan_16x10"]
    lines.append(f"  16x10 scan: {s['seconds']:.3f} s steady state = {s['grid_points_per_s']:,.0f} grid points/s")
    if "seed_method" in r:
        sm = r["seed_method"]
        lines.append(f"  seed method (NumPy/SciPy): {sm['energies_per_s']:,.0f} energies/s, "
                     f"{sm['chi2_calls_per_s']:,.0f} chi2 calls/s -> ~{sm['seconds_per_grid_point_estimated']:.0f} s "
                     f"per DE grid point")
        ra = r["ratios"]
        lines.append(f"  ratios: exact energies x{ra['exact_energies_vs_seed']:,.0f}, reference energies "
                     f"x{ra['reference_energies_vs_seed']:,.0f}, scan point x{ra['scan_point_vs_seed_de_point']:,.0f}")
    return "\n".join(lines)
