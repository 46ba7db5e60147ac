"""Feldman-Cousins with 1000 toys per grid point on one H200: a PROJECTION from a measured CPU run.

Runs `run_fc` (what `qfdjax report DIR --fc N` runs) on a copy of the seed's committed 16x10 scan
(experiments/results/full_16x10) with N toys per point on this machine, timing every compiled kernel
call (blocking) by name and counting the LM lane-iterations of every LM round (lanes x loop
iterations).  Then, for 1000 toys per point on one H200 (34 TFLOP/s fp64, 4.8 TB/s):

- LM rounds: lane-iterations x (1000/N) x the roofline time of one lane-iteration (XLA's cost
  analysis with the quadrature unrolled, as benchmarks/whole_process.py measures it), plus a launch
  latency per loop iteration (the iterations do not grow with lanes: more toys are more lanes);
- the other kernels (diagnostics, the chi2 screen): their CPU time x (1000/N), sped up by the LM's
  own CPU-to-roofline ratio (an assumption: they are the same elementwise quadrature work);
- host work (toy data, packing, files): its CPU time x (1000/N), as measured.

Every projected figure is labelled as such; only the measured run is a measurement.  Run on a GPU
(benchmarks/gpu_session.sh does, last), the measured table is the GPU's own FC figure.

    python benchmarks/fc_projection.py --toys 50 --out benchmarks/results/fc-projection-cpu-2cores.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from whole_process import GPU_ITERATION_LATENCY_S, H200_BYTES_PER_S, H200_FP64_FLOPS, cost_analysis  # noqa: E402


def instrument(calls: list):
    """Wrap every module's `call_compiled` so each kernel call is timed to completion and recorded."""
    import jax

    from qfdjax.fitting import compiled

    original = compiled.call_compiled

    def timed(name, fn, *args):
        key = compiled._split(name, args)[0]
        first = key not in compiled._LOADED
        t0 = time.perf_counter()
        out = jax.block_until_ready(original(name, fn, *args))
        entry = {"name": name, "seconds": time.perf_counter() - t0, "first": first}
        if name == "lm_round":
            point_args = args[1]  # (body, point_args, numerics, shared): see kernel.run_points
            entry["lanes"] = int(len(point_args[0]))
            steps_in = point_args[7]
            entry["iterations"] = int((jax.device_get(out["step"]) - steps_in).max())
        calls.append(entry)
        return out

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("qfdjax") and getattr(module, "call_compiled", None) is original:
            module.call_compiled = timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toys", default="10,50",
                        help="toys per grid point of the two measured CPU runs (host time is fitted as a + b * toys)")
    parser.add_argument("--target-toys", type=int, default=1000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import qfdjax  # noqa: F401 - float64 and the compile cache before any kernel
    from qfdjax.fitting import diagnostics, kernel  # noqa: F401 - every module holding call_compiled

    calls: list = []
    instrument(calls)
    runs = [measure(calls, int(n)) for n in args.toys.split(",")]
    small, large = runs[0], runs[-1]
    # Host time: a fixed part (reading the scan, per-call overheads) and a part linear in the toys.
    slope = (large["host_s"] - small["host_s"]) / max(large["toys_per_point"] - small["toys_per_point"], 1)
    fixed = max(large["host_s"] - slope * large["toys_per_point"], 0.0)
    lm = large["kernels"]["lm_round"]
    per_lm = cost_analysis()["per_lm_iteration_per_lane"]
    roofline = max(per_lm["flops"] / H200_FP64_FLOPS, per_lm["bytes"] / H200_BYTES_PER_S)
    cpu_per_lane_iteration = lm["seconds"] / lm["lane_iterations"]
    gain = cpu_per_lane_iteration / roofline
    scale = args.target_toys / large["toys_per_point"]
    projected = {
        "lm_s": lm["lane_iterations"] * scale * roofline + lm["iterations"] * GPU_ITERATION_LATENCY_S,
        "other_kernels_s": sum(k["seconds"] for n, k in large["kernels"].items() if n != "lm_round") * scale / gain,
        "host_s": fixed + max(slope, 0.0) * args.target_toys,
    }
    projected["total_s"] = sum(projected.values())
    cpu_extrapolated = large["wall_s"] - large["kernel_loads_s"] + (scale - 1) * (large["wall_s"] - large["kernel_loads_s"] - fixed)
    result = {
        "measured": {"machine": {"cpu_count": os.cpu_count(), "machine": platform.machine()}, "runs": runs,
                     "host_fit": {"fixed_s": fixed, "per_toy_per_point_s": slope},
                     "lm_us_per_lane_iteration": cpu_per_lane_iteration * 1e6},
        "projection": {"label": "PROJECTION for one H200, not a measurement", "toys_per_point": args.target_toys,
                       "grid_points": large["grid_points"],
                       "assumes": {"fp64_flops_per_s": H200_FP64_FLOPS, "bytes_per_s": H200_BYTES_PER_S,
                                   "latency_per_lm_iteration_s": GPU_ITERATION_LATENCY_S,
                                   "lm_per_lane_iteration": per_lm,
                                   "other_kernels_gain": "the LM's CPU/roofline ratio",
                                   "host_work": "as measured on this CPU: fixed + linear in toys"},
                       "lm_gain_over_this_cpu": gain, **projected},
        "cpu_extrapolated_s": cpu_extrapolated,
    }
    for run in runs:
        lm_run = run["kernels"]["lm_round"]
        other = sum(k["seconds"] for n, k in run["kernels"].items() if n != "lm_round")
        print(f"measured on this CPU: FC on {run['grid_points']} points x {run['toys_per_point']} toys in "
              f"{run['wall_s']:.1f} s (LM {lm_run['seconds']:.1f} s over {lm_run['lane_iterations']:.3g} "
              f"lane-iterations; other kernels {other:.1f} s; kernel loads {run['kernel_loads_s']:.1f} s; "
              f"host {run['host_s']:.1f} s)")
    print(f"LM on this CPU: {cpu_per_lane_iteration * 1e6:.2f} us per lane-iteration; host: {fixed:.1f} s fixed + "
          f"{slope * 1e3:.1f} ms per toy per point")
    print(f"this CPU at {args.target_toys} toys per point (extrapolated): {cpu_extrapolated / 60:.0f} min")
    print(f"PROJECTED on one H200 at {args.target_toys} toys per point: {projected['total_s']:.0f} s "
          f"(LM {projected['lm_s']:.1f} s, other kernels {projected['other_kernels_s']:.1f} s, "
          f"host {projected['host_s']:.1f} s) -- a projection, not a measurement")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")


def measure(calls: list, toys: int) -> dict:
    """One measured FC run on a fresh copy of the seed's 16x10 scan: wall, kernels by name, host time."""
    from qfdjax.stats.fc import run_fc

    calls.clear()
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "full_16x10"
        shutil.copytree(ROOT / "experiments" / "results" / "full_16x10", scan,
                        ignore=shutil.ignore_patterns("fc", "chunks"))
        t0 = time.perf_counter()
        fc = run_fc(scan, toys, seed=0)
        wall = time.perf_counter() - t0
    loads = sum(c["seconds"] for c in calls if c["first"])
    kernels: dict = {}
    for c in calls:
        if c["first"]:
            continue
        k = kernels.setdefault(c["name"], {"calls": 0, "seconds": 0.0, "lane_iterations": 0, "iterations": 0})
        k["calls"] += 1
        k["seconds"] += c["seconds"]
        if c["name"] == "lm_round":
            k["lane_iterations"] += c["lanes"] * c["iterations"]
            k["iterations"] += c["iterations"]
    return {"toys_per_point": toys, "grid_points": len(fc["t_observed"]) * len(fc["t_observed"][0]),
            "wall_s": wall, "kernel_loads_s": loads,
            "host_s": wall - loads - sum(k["seconds"] for k in kernels.values()), "kernels": kernels,
            "critical_values_median": {cl: _median(v) for cl, v in fc["t_critical"].items()}}


def _median(grid) -> float:
    import numpy as np

    values = np.asarray(grid, float)
    return float(np.nanmedian(values))


if __name__ == "__main__":
    main()
