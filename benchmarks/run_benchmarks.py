"""Full benchmark tables and plots: throughput vs batch, scan time vs grid size, memory per chunk.

    python benchmarks/run_benchmarks.py [--max-grid 128] [--device cpu|gpu] [--out-dir benchmarks/results]

Writes <out-dir>/<platform>-<label>.json and PNG plots next to it.  Every figure
is measured in this run on the device it names.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from qfdjax.bench import bench_exact_energies, bench_reference_energies, bench_seed_method, device_info
from qfdjax.fitting.fit import FitConfig
from qfdjax.fitting.kernel import _lm_round, initial_starts
from qfdjax.fitting.problem import Problem, make_numerics
from qfdjax.io import run_metadata, write_json
from qfdjax.fitting.likelihood import Likelihood
from qfdjax.fitting.optimize import LMConfig
from qfdjax.fitting.params import ParameterSpace
from qfdjax.model.profiles import BoundaryLayer
from qfdjax.scans.config import ScanConfig
from qfdjax.scans.scan import run_scan

GRIDS = [(16, 10), (32, 32), (64, 64), (128, 128), (256, 256), (512, 512), (1024, 1024)]


def memory_per_chunk(chunk_sizes, starts=8):
    """XLA's buffer sizes for one LM round over a chunk of P points x `starts` lanes (the fit's largest kernel)."""
    space = ParameterSpace.seed()
    problem = Problem.build(space, Likelihood.masses_only(), BoundaryLayer())
    lm = LMConfig()
    rows = []
    for P in chunk_sizes:
        lanes = P * starts
        st, _ = initial_starts(space, starts, np.arange(P), 0)
        num = make_numerics("exact", np.full(lanes, 0.015))
        data = np.broadcast_to(problem.likelihood.data(), (lanes, problem.likelihood.data().size)).copy()
        args = (np.full(lanes, 3.1), np.full(lanes, 0.015), np.full(lanes, 0.0065), data, st.reshape(lanes, -1),
                np.full(lanes, np.nan), np.full(lanes, lm.initial_damping), np.zeros(lanes, np.int64),
                np.zeros(lanes, bool), np.zeros(lanes, np.int64), np.full((lanes, data.shape[1]), np.nan),
                np.full((lanes, data.shape[1], st.shape[-1]), np.nan), np.full(lanes, 24, np.int64),
                np.full(lanes, -1, np.int64))
        lowered = jax.jit(lambda num, *a: _lm_round(num, *a, problem, lm)).lower(num, *args)
        stats = lowered.compile().memory_analysis()
        rows.append({"chunk": P, "starts": starts, "temp_bytes": stats.temp_size_in_bytes,
                     "argument_bytes": stats.argument_size_in_bytes, "output_bytes": stats.output_size_in_bytes})
    return rows


def scan_scaling(max_grid, chunk, on_row=None):
    """Full scans of growing grids; `on_row(rows)` after each (so a run cut short keeps what it measured)."""
    rows = []
    for nb, nw in GRIDS:
        if nb * nw > max_grid * max_grid:
            break
        with tempfile.TemporaryDirectory() as tmp:
            config = ScanConfig(beta=(2.95, 3.25, nb), w=(0.005, 0.05, nw), fit=FitConfig(starts=8))
            t0 = time.perf_counter()
            record = run_scan(config, tmp, chunk=min(chunk, nb * nw), progress=False)
            wall = time.perf_counter() - t0
        converged = float(np.mean(record["convergence"]["converged"]))
        rows.append({"grid": [nb, nw], "points": nb * nw, "wall_s": wall, "fit_s": record["timings"]["fit_s"],
                     "scan_s": record["timings"]["scan_s"], "points_per_s": nb * nw / record["timings"]["scan_s"],
                     "converged_fraction": converged, "chi2_min": record["analysis"]["chi2_min"],
                     "verdict": record["verdict"]["path"]})
        print(f"  scan {nb}x{nw}: {wall:.1f} s wall ({rows[-1]['points_per_s']:.0f} points/s), "
              f"converged {converged:.3f}", file=sys.stderr, flush=True)
        if on_row is not None:
            on_row(rows)
    return rows


def names(info) -> tuple[str, str]:
    """(file stem, title) for a device: "cpu-2cores" / "CPU, 2 cores"; "gpu-NVIDIA_H100" / "NVIDIA H100"."""
    platform, kind = info["platform"], info["device_kind"]
    if kind.lower() == platform.lower():
        return f"{platform}-{info['cpus_usable']}cores", f"{platform.upper()}, {info['cpus_usable']} cores"
    return f"{platform}-{kind.replace(' ', '_')}", kind


def plot(result, out_dir, stem):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = names(result["device"])[1]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ex = result["exact_energies"]
    axes[0].loglog([r["batch"] for r in ex], [r["energies_per_s"] for r in ex], "o-", label="exact (JAX)")
    ref = result["reference_energies"]
    axes[0].loglog([r["batch"] for r in ref], [r["energies_per_s"] for r in ref], "s-", label="reference (JAX)")
    if "seed_method" in result:
        axes[0].axhline(result["seed_method"]["energies_per_s"], color="k", ls="--", label="seed method (NumPy)")
    axes[0].set_xlabel("batch size")
    axes[0].set_ylabel("energies / s")
    _legend_of_drawn(axes[0])
    axes[0].set_title(f"energy throughput — {title}")
    sc = result["scan_scaling"]
    axes[1].loglog([r["points"] for r in sc], [r["scan_s"] for r in sc], "o-", label="qfdjax scan (converged)")
    if "seed_method" in result:
        per = result["seed_method"]["seconds_per_grid_point_estimated"]
        pts = np.array([r["points"] for r in sc])
        axes[1].loglog(pts, pts * per, "k--", label="seed DE (estimated)")
    for r in sc:
        # Offset below-right of its marker: a label on the point hides it.
        axes[1].annotate(f"{r['grid'][0]}x{r['grid'][1]}", (r["points"], r["scan_s"]), xytext=(4, -11),
                         textcoords="offset points", fontsize=7)
    if sc:
        axes[1].set_ylim(bottom=min(r["scan_s"] for r in sc) / 3)  # room for the labels under the markers
        axes[1].set_xlim(right=max(r["points"] for r in sc) * 2.5)
    axes[1].set_xlabel("grid points")
    axes[1].set_ylabel("seconds")
    _legend_of_drawn(axes[1])
    axes[1].set_title(f"scan time vs grid size — {title}")
    fig.tight_layout()
    fig.savefig(Path(out_dir) / f"{stem}.png", dpi=110)
    plt.close(fig)


def _legend_of_drawn(ax):
    """A legend naming only lines that have data inside the axes' limits."""
    lo, hi = ax.get_ylim()
    drawn = [line for line in ax.get_lines() if not line.get_label().startswith("_")
             and np.any((np.asarray(line.get_ydata(), float) >= lo) & (np.asarray(line.get_ydata(), float) <= hi))]
    if drawn:
        ax.legend(handles=drawn, fontsize=8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-grid", type=int, default=128, help="largest square grid side to scan")
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out-dir", default="benchmarks/results")
    parser.add_argument("--label", default=None, help="file stem (default from the device: cpu-2cores, gpu-<kind>)")
    parser.add_argument("--replot", metavar="RESULT.json", help="only redraw the figure of a saved result")
    args = parser.parse_args(argv)
    if args.replot:
        saved = Path(args.replot)
        plot(json.loads(saved.read_text()), saved.parent, saved.stem)
        return
    info = device_info(args.device)
    label = args.label or names(info)[0]
    t0 = time.perf_counter()
    with jax.default_device(jax.devices(args.device)[0]) if args.device else _Null():
        result = {"device": info}
        print("exact energies ...", file=sys.stderr, flush=True)
        result["exact_energies"] = bench_exact_energies([100, 1_000, 10_000, 100_000, 1_000_000], repeats=7)
        result["energies_per_s"] = result["exact_energies"][-1]["energies_per_s"]
        print("reference energies ...", file=sys.stderr, flush=True)
        result["reference_energies"] = [bench_reference_energies(n) for n in (100, 1_000, 10_000)]
        print("memory per chunk ...", file=sys.stderr, flush=True)
        result["memory_per_chunk"] = memory_per_chunk([64, 256, 1024, 4096])
        print("scan scaling ...", file=sys.stderr, flush=True)
        partial = Path(args.out_dir) / f"{label}.partial.json"
        result["scan_scaling"] = scan_scaling(args.max_grid, args.chunk,
                                              lambda rows: write_json(partial, dict(result, scan_scaling=rows)))
    if info["platform"] == "cpu":
        result["seed_method"] = bench_seed_method(3.0)
    result["timings"] = {"total_s": time.perf_counter() - t0}
    metadata = run_metadata()
    metadata.pop("device")
    result |= metadata
    out = Path(args.out_dir)
    write_json(out / f"{label}.json", result)
    (out / f"{label}.partial.json").unlink(missing_ok=True)
    plot(result, out, label)
    print(f"wrote {out / (label + '.json')} and {out / (label + '.png')}")


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
