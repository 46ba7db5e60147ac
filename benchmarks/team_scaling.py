"""Scan scaling over processes on jax.distributed: the same scan by 1 and by N local processes.

Each process is a whole `qfdjax scan` command (imports, kernel loading, fits,
and for process 0 the diagnostics, refit, record and plots); the wall time is
from the first start to the last exit.  Run once first to fill the compile
cache (`--warm-up`), so both sides load the same compiled kernels.

    python benchmarks/team_scaling.py --grid 64 --processes 1 2 --out benchmarks/results/team-scaling-cpu-2cores.json

On a machine with fewer cores than processes x XLA threads the processes share
cores: the figure then shows the runtime's overhead and the use of idle cores,
not what separate hosts would give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QFDJAX = [sys.executable, "-m", "qfdjax", "scan"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_team(grid: int, processes: int, out: Path, starts: int, chunk: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    args = ["--beta", "2.95", "3.25", str(grid), "--w", "0.005", "0.05", str(grid), "--starts", str(starts),
            "--chunk", str(chunk), "--out", str(out), "--no-progress"]
    port = _free_port()
    t0 = time.perf_counter()
    if processes == 1:
        procs = [subprocess.Popen(QFDJAX + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    else:
        procs = [subprocess.Popen(QFDJAX + args + ["--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                                   str(processes), "--process-id", str(rank)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for rank in range(processes)]
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"a process failed ({p.returncode}):\n{err[-2000:]}")
    record = json.loads((out / "scan.json").read_text())
    return {"processes": processes, "wall_s": wall, "timings": record["timings"],
            "per_process": record.get("processes", {}).get("per_process"),
            "chi2_min": min(min(x for x in row if x is not None) for row in record["chi2"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=64, help="N for an N x N grid (default 64)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--starts", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warm-up", action="store_true", help="one unmeasured run of each first")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qfdjax-team-"))
    rows = []
    try:
        if args.warm_up:
            for n in args.processes:
                run_team(args.grid, n, work / "warm", args.starts, args.chunk)
        for repeat in range(args.repeats):
            for n in args.processes:
                row = run_team(args.grid, n, work / f"scan-{n}", args.starts, args.chunk)
                row["repeat"] = repeat
                rows.append(row)
                print(f"  {args.grid}x{args.grid}, {n} process(es): {row['wall_s']:.1f} s wall, "
                      f"fits {row['timings']['fit_s']:.1f} s (process 0), chi2_min {row['chi2_min']:.10g}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {n: min(r["wall_s"] for r in rows if r["processes"] == n) for n in args.processes}
    result = {"grid": [args.grid, args.grid], "starts": args.starts, "chunk": args.chunk,
              "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
              "runs": rows, "best_wall_s": best,
              "speedup": {n: best[args.processes[0]] / best[n] for n in args.processes},
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"best_wall_s": best, "speedup": result["speedup"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
