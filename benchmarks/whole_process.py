"""Whole-process timings: what a user waits for, cold (empty compile cache) and warm.

Times `qfdjax fit`, `qfdjax scan` (16x10, 64x64, optionally 256x256),
`qfdjax energy` and `qfdjax bench --quick` as separate processes, and the SciPy
peer script (benchmarks/peer_scipy.py: exact NumPy energies, TRF, 8 starts per
fit, 4 per scan point) in the same run, and reports the ratios.  Adds XLA's
cost analysis of the energy and of one LM iteration, and from it a roofline
projection for one H100 — labelled as a projection, not a measurement.

    python benchmarks/whole_process.py --out benchmarks/results/whole-process-cpu-2cores.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qfdjax.fitting.lowering import GPUS

ROOT = Path(__file__).resolve().parents[1]
QFDJAX = [sys.executable, "-m", "qfdjax"]
PEER = [sys.executable, str(ROOT / "benchmarks" / "peer_scipy.py")]
# fp64 peak and memory bandwidth from the data sheets, as `qfdjax bench --lower` projects with them
# (the H200 is the kind of GPU this project is lent).
H100_FP64_FLOPS, H100_BYTES_PER_S = GPUS["H100"]
H200_FP64_FLOPS, H200_BYTES_PER_S = GPUS["H200"]
# Assumed cost of one LM loop iteration on a GPU besides its arithmetic: the loop body's kernel
# launches and the predicate read back to the host (a few us each): an assumption, not a measurement.
GPU_ITERATION_LATENCY_S = 30e-6


def timed(cmd, env, cwd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, done.stdout


def cold_and_warm(name, cmd, env, workdir, warm_runs, reset=None, after_warm=None):
    """Wall seconds of one run with an empty cache, then `warm_runs` runs with it filled
    (each followed by `after_warm()`, if given)."""
    cache = Path(workdir) / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(env, QFDJAX_CACHE_DIR=str(cache))
    walls = []
    for k in range(1 + warm_runs):
        if reset:
            reset()
        wall, out = timed(cmd, env, workdir)
        walls.append(wall)
        if k and after_warm:
            after_warm()
    row = {"cold_s": walls[0], "warm_s": statistics.median(walls[1:]) if warm_runs else None,
           "warm_runs": walls[1:]}
    print(f"  {name:<14} cold {walls[0]:7.2f} s   warm {row['warm_s'] or float('nan'):7.2f} s", flush=True)
    return row, out


def fit_against_peer(env, workdir, runs):
    """`qfdjax fit` cold, then warm runs alternating with the peer's fit, so that the
    machine's drift (10-30 % on this shared 2-core machine) hits both sides alike."""
    peer = []  # (wall, output) of each peer run
    row, _ = cold_and_warm("fit", QFDJAX + ["fit", "--beta", "3.1", "--w", "0.015"], env, workdir, runs,
                           after_warm=lambda: peer.append(peer_runs(["fit", "--starts", "8"], env, 1)))
    walls = [wall for wall, _ in peer]
    print(f"  {'':<14} (peer fit, alternating: {statistics.median(walls):.2f} s)", flush=True)
    return row, {"fit_s": statistics.median(walls), "fit_runs": walls, "fit_chi2": peer[-1][1]["chi2"]}


def peer_runs(args, env, runs):
    walls, outs = [], []
    for _ in range(runs):
        wall, out = timed(PEER + args, env, ROOT)
        walls.append(wall)
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return statistics.median(walls), outs[-1]


def cost_analysis() -> dict:
    """XLA's flop and byte counts per energy and per LM iteration (single lane), from compiled HLO."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import qfdjax
    from qfdjax.fitting.optimize.lm import damped_step
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.fitting.problem import Problem
    from qfdjax.model.profiles import BoundaryLayer

    n = 4096
    rng = np.random.default_rng(0)
    cols = [jnp.asarray(rng.uniform(lo, hi, n)) for lo, hi in
            [(2.9, 3.3), (0.005, 0.05), (0.002, 0.02), (0.05, 1.5), (0.01, 0.2), (0.7, 1.0)]]

    # Unrolled quadrature: XLA's cost analysis counts a loop body once.
    exact = qfdjax.Exact(unroll=True)

    def energies(*c):
        return qfdjax.lepton_energies(*c, numerics=exact).total

    def costs(fn, *args):
        analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        return float(analysis.get("flops", np.nan)), float(analysis.get("bytes accessed", np.nan))

    e_flops, e_bytes = costs(energies, *cols)
    space = ParameterSpace.seed()
    problem = Problem.build(space, qfdjax.Likelihood.masses_only(), BoundaryLayer())
    numerics = exact
    u = jnp.asarray(rng.uniform(size=(n, 9)))
    beta, w, lam = jnp.full(n, 3.1), jnp.full(n, 0.015), jnp.full(n, 0.0065)

    def lm_iteration(u, beta, w, lam, r, J):
        # One LM step as the loop takes it: the residual-space damped step from the (r, J)
        # the loop carries, then the trial point's residuals and Jacobian.
        def one(uu, b, ww, ll, rr, JJ):
            delta = damped_step(JJ, rr, 1e-3)
            r_new, J_new = problem.residuals_and_jacobian(jnp.clip(uu + delta, 0, 1), b, ww, ll, numerics)
            return jnp.sum(r_new ** 2) + jnp.sum(J_new)
        return jax.vmap(one)(u, beta, w, lam, r, J)

    r, J = jnp.asarray(rng.normal(size=(n, 3))), jnp.asarray(rng.normal(size=(n, 3, 9)))
    l_flops, l_bytes = costs(lm_iteration, u, beta, w, lam, r, J)
    per_energy = {"flops": e_flops / n, "bytes": e_bytes / n}
    per_lm = {"flops": l_flops / n, "bytes": l_bytes / n}
    roofline = lambda c: max(c["flops"] / H100_FP64_FLOPS, c["bytes"] / H100_BYTES_PER_S)  # noqa: E731
    mean_steps, starts = 47.2, 8  # measured on the 64x64 seed-range scan (mean LM steps per start)
    return {
        "per_energy": per_energy, "per_lm_iteration_per_lane": per_lm,
        "h100_projection": {
            "label": "roofline PROJECTION from XLA's CPU cost analysis, not a measurement",
            "assumes": {"fp64_flops_per_s": H100_FP64_FLOPS, "bytes_per_s": H100_BYTES_PER_S,
                        "mean_lm_steps_per_start": mean_steps, "starts_per_point": starts},
            "energies_per_s": 1.0 / roofline(per_energy),
            "lm_lane_steps_per_s": 1.0 / roofline(per_lm),
            "scan_1024x1024_fit_s": 1024 * 1024 * starts * mean_steps * roofline(per_lm),
        },
    }


def lm_step_seconds(lanes: int = 512, steps: int = 24) -> float:
    """Measured seconds per LM lane-step on this machine: one LM round of `lanes` seed-grid lanes for
    `steps` iterations (no tolerance stops the round), after compilation, best of five."""
    import jax
    import numpy as np

    from lane_step import seed_lanes  # this folder's script, on the path when run as one
    from qfdjax.fitting.kernel import _lm_round

    setup = seed_lanes(lanes, steps)
    problem, lm, args = setup["problem"], setup["lm"], setup["round_args"]
    kernel = jax.jit(lambda *a: _lm_round(*a, problem=problem, lm=lm)).lower(*args).compile()
    out = jax.block_until_ready(kernel(*args))
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = jax.block_until_ready(kernel(*args))
        walls.append(time.perf_counter() - t0)
    # Per lane and loop iteration, as the kernel runs them (a lane that has stopped is still carried).
    return min(walls) / (lanes * float(np.max(np.asarray(out["step"]))))


def scan_lane_steps(scan_dir: Path) -> dict:
    """LM lane-steps and the longest start's steps of a finished scan (from its scan.npz)."""
    import numpy as np

    with np.load(scan_dir / "scan.npz") as data:
        steps = np.asarray(data["steps"])
    return {"lane_steps": int(steps.sum()), "longest_start_steps": int(steps.max())}


def gpu_projection(row: dict, lane_steps: dict, cpu_step_s: float, per_lm: dict) -> dict:
    """A scan's warm wall on one H200, PROJECTED: its CPU wall with the LM lane-steps' CPU time
    replaced by their roofline time plus a launch latency per loop iteration.  Everything else
    (imports, diagnostics, intervals, figures, files) is kept at its CPU time, so this errs slow."""
    roofline = max(per_lm["flops"] / H200_FP64_FLOPS, per_lm["bytes"] / H200_BYTES_PER_S)
    cpu_lm = lane_steps["lane_steps"] * cpu_step_s
    # Rounds of 24 steps; the chunks' rounds run one after another.
    iterations = lane_steps["longest_start_steps"] * lane_steps.get("chunks", 1)
    gpu_lm = lane_steps["lane_steps"] * roofline + iterations * GPU_ITERATION_LATENCY_S
    return {"label": "PROJECTION for one H200, not a measurement", "cpu_lm_s": cpu_lm, "gpu_lm_s": gpu_lm,
            "projected_warm_s": max(row["warm_s"] - cpu_lm, 0.0) + gpu_lm}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--big", action="store_true", help="also a 256x256 scan (minutes)")
    parser.add_argument("--skip-peer-scan", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    # Python bytecode of qfdjax compiled once, as an installed package (or any run
    # without PYTHONDONTWRITEBYTECODE) has it; the peer is a single script either way.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "qfdjax")], check=True)
    results = {"machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                           "python": platform.python_version()}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        scan_dir = Path(tmp) / "scan"
        reset = lambda: shutil.rmtree(scan_dir, ignore_errors=True)  # noqa: E731
        print("qfdjax, whole process:")
        runs = results["runs"]
        runs["fit"], results["peer"] = fit_against_peer(env, tmp, 7)
        runs["energy"], _ = cold_and_warm("energy", QFDJAX + ["energy", "--beta", "3.1", "--w", "0.015", "--R-c",
                                                              "0.5", "--U", "0.1", "--A", "0.9"], env, tmp, 3)
        scan = QFDJAX + ["scan", "--no-progress", "--out", str(scan_dir)]
        runs["scan_16x10"], _ = cold_and_warm("scan 16x10", scan, env, tmp, 2, reset)
        runs["scan_16x10"]["lm"] = dict(scan_lane_steps(scan_dir), chunks=3)  # default --chunk 64
        runs["scan_64x64"], _ = cold_and_warm("scan 64x64", scan + ["--beta", "2.95", "3.25", "64", "--w", "0.005",
                                                                    "0.05", "64"], env, tmp, 2, reset)
        runs["scan_64x64"]["lm"] = dict(scan_lane_steps(scan_dir), chunks=4096 // 64)
        if args.big:
            runs["scan_256x256"], _ = cold_and_warm("scan 256x256", scan + [
                "--beta", "2.95", "3.25", "256", "--w", "0.005", "0.05", "256", "--chunk", "256"], env, tmp, 0, reset)
            runs["scan_256x256"]["warm_s"] = runs["scan_256x256"]["cold_s"]  # one run: the projection starts from it
            runs["scan_256x256"]["lm"] = dict(scan_lane_steps(scan_dir), chunks=65536 // 256)
        runs["bench_quick"], _ = cold_and_warm("bench --quick", QFDJAX + ["bench", "--quick", "--no-seed"], env,
                                               tmp, 1)
        print("SciPy peer script, whole process:")
        print(f"  fit            {results['peer']['fit_s']:7.2f} s   (median of the runs alternating with "
              f"qfdjax's; chi2 {results['peer']['fit_chi2']:.10g})", flush=True)
        if not args.skip_peer_scan:
            peer_scan, scan_out = peer_runs(["scan", "--nb", "16", "--nw", "10", "--starts", "4"], env, 1)
            per_point = scan_out["seconds"] / scan_out["points"]
            results["peer"].update({"scan_16x10_s": peer_scan, "scan_16x10_chi2_min": scan_out["chi2_min"],
                                    "per_point_s": per_point,
                                    "scan_64x64_s_extrapolated": peer_scan + per_point * (4096 - 160),
                                    "scan_256x256_s_extrapolated": peer_scan + per_point * (65536 - 160)})
            print(f"  scan 16x10     {peer_scan:7.2f} s   ({per_point:.3f} s per point; 64x64 extrapolated "
                  f"{results['peer']['scan_64x64_s_extrapolated']:.0f} s)", flush=True)
    peer = results["peer"]
    ratios = {"fit_warm": peer["fit_s"] / runs["fit"]["warm_s"], "fit_cold": runs["fit"]["cold_s"] / peer["fit_s"]}
    if "scan_16x10_s" in peer:
        ratios["scan_16x10_warm"] = peer["scan_16x10_s"] / runs["scan_16x10"]["warm_s"]
        ratios["scan_64x64_warm_vs_extrapolated_peer"] = (peer["scan_64x64_s_extrapolated"]
                                                          / runs["scan_64x64"]["warm_s"])
    results["ratios"] = ratios
    print("ratios:", json.dumps({k: round(v, 2) for k, v in ratios.items()}))
    results["cost_analysis"] = cost_analysis()
    print("cost analysis:", json.dumps(results["cost_analysis"], indent=1))
    cpu_step_s = lm_step_seconds()
    results["lm_step_us_measured"] = cpu_step_s * 1e6
    print(f"LM lane-step on this machine: {cpu_step_s * 1e6:.2f} us (512 lanes, 24 steps)")
    per_lm = results["cost_analysis"]["per_lm_iteration_per_lane"]
    for name, row in runs.items():
        if "lm" in row:
            row["h200_projection"] = gpu_projection(row, row["lm"], cpu_step_s, per_lm)
            print(f"  {name:<14} warm {row['warm_s']:7.2f} s on this CPU; PROJECTED on one H200: "
                  f"{row['h200_projection']['projected_warm_s']:7.2f} s", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
