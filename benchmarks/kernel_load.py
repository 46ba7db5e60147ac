"""How a process gets its compiled kernels back: qfdjax's jax.export cache against plain jax.jit.

Both use XLA's persistent compilation cache for the executable; they differ in what comes before
it: "export" deserialises a stored jax.export artifact and lowers it, "jit" traces the Python
functions and lowers them again (what a jax.jit program does in every new process).  Each command
runs once to fill a fresh cache (its own QFDJAX_CACHE_DIR), then `--repeats` times warm; the table
gives the medians of the wall-time split every results file records (kernel_load, wall).  Serialised
executables (jax.experimental.serialize_executable), the third candidate, fail on CPU with jaxlib
0.10.2 at their first call after reloading ("Function compare_convert_fusion not found"), so they
are not in the table.

    python benchmarks/kernel_load.py --out benchmarks/results/kernel-load-cpu-2cores.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS = {
    "fit": ["fit", "--beta", "3.1", "--w", "0.015"],
    "scan 16x10": ["scan", "--beta", "2.95", "3.25", "16", "--w", "0.005", "0.05", "10", "--no-progress"],
}


def _run(command: list[str], out: Path, env: dict) -> dict:
    target = ["--out", str(out / "fit.json")] if command[0] == "fit" else ["--out", str(out / "scan")]
    subprocess.run([sys.executable, "-m", "qfdjax", *command, *target], env=env, check=True, capture_output=True)
    record = out / "fit.json" if command[0] == "fit" else out / "scan" / "scan.json"
    timings = json.loads(record.read_text())["timings"]
    if command[0] != "fit":
        subprocess.run(["rm", "-rf", str(out / "scan")], check=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    for strategy in ("export", "jit"):
        cache = tempfile.mkdtemp(prefix=f"qfdjax-cache-{strategy}-")
        env = dict(os.environ, QFDJAX_CACHE_DIR=cache, QFDJAX_KERNEL_LOAD=strategy)
        for name, command in COMMANDS.items():
            work = Path(tempfile.mkdtemp())
            _run(command, work, env)  # fills this strategy's cache
            warm = [_run(command, work, env) for _ in range(args.repeats)]
            row = {"strategy": strategy, "command": name,
                   **{k: statistics.median(t[k] for t in warm) for k in ("wall", "imports", "kernel_load", "device")}}
            rows.append(row)
            print(f"{strategy:<7} {name:<11} warm wall {row['wall']:.2f} s, kernel loads {row['kernel_load']:.2f} s, "
                  f"imports {row['imports']:.2f} s, device {row['device']:.2f} s")
    if args.out:
        import jax

        Path(args.out).write_text(json.dumps({"rows": rows, "repeats": args.repeats, "jax": jax.__version__,
                                              "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
