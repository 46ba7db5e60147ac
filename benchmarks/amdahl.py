"""Where a command's wall time goes (Amdahl): imports, kernel loads, device, host and I/O, per command.

Every results file qfdjax writes from the command line carries `timings` with the split
(`qfdjax.runtime.account`): `device` is the time the main thread is blocked on compiled
calls (their results fetched), `kernel_load` the time spent loading or compiling kernels,
`io` files and figures, `imports` the interpreter and module imports, and `host` the rest
(Python and NumPy between compiled calls).  Only `device` shrinks on an accelerator, so
the device share of the time past imports bounds what one can give.

This runs each command as a separate process, cold (empty compile cache) and warm, reads
the split from the files it wrote, and prints and saves the table:

    python benchmarks/amdahl.py --out benchmarks/results/amdahl-cpu-2cores.json [--big]
    python benchmarks/amdahl.py --table benchmarks/results/amdahl-cpu-2cores.json   # as Markdown

--big adds the 256x256 scan (about 4 minutes cold and warm on 2 cores).  Feldman-Cousins
runs on the 16x10 scan's directory with 200 toys per point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QFDJAX = [sys.executable, "-m", "qfdjax"]
PARTS = ("imports", "kernel_load", "device", "host", "io")


def run(cmd, env, cwd) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def split_of(path: Path, key=None) -> tuple[dict, dict | None]:
    """The wall-time split a command's results file records, and the JAX device it ran on (one read: a
    256 x 256 scan.json is 34 MB)."""
    record = json.loads(path.read_text())
    timings = record["timings"] if key is None else record[key]["timings"]
    return {k: timings[k] for k in ("wall", *PARTS)}, record.get("device")


def measure(name, cmd, result, env, workdir, cold: bool, key=None) -> dict:
    """One run of `cmd` (cold: with a fresh compile cache), its split read from `result`."""
    cache = workdir / f"cache-{name}"
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    env = dict(env, QFDJAX_CACHE_DIR=str(cache))
    outside = run(cmd, env, workdir)
    # The device comes from the command's own record: a GPU session's table must say it is one.
    split, device = split_of(workdir / result, key)
    past_imports = split["wall"] - split["imports"]
    row = {"case": name, "state": "cold" if cold else "warm", "wall_outside_s": outside, "jax_device": device, **split,
           "device_share_past_imports": split["device"] / past_imports if past_imports > 0 else None,
           "parts_sum_over_wall": sum(split[k] for k in PARTS) / split["wall"]}
    print(f"  {name:<22}{row['state']:<6}" + "".join(f"{split[k]:12.2f}" for k in ("wall", *PARTS))
          + f"{100 * (row['device_share_past_imports'] or 0):8.1f} %", flush=True)
    return row


def markdown(record: dict) -> str:
    """The saved table as Markdown (what the READMEs show)."""
    lines = ["| command | state | wall s | imports | kernel loads | device | host | I/O | device share past imports "
             "| wall with device = 0 (any accelerator's floor) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        share = r["device_share_past_imports"]
        shown = f"{100 * share:.0f} %" if share is not None else "–"
        lines.append(f"| {r['case']} | {r['state']} | {r['wall']:.2f} | " + " | ".join(f"{r[k]:.2f}" for k in PARTS)
                     + f" | {shown} | {accelerator_floor(r):.2f} |")
    return "\n".join(lines)


def accelerator_floor(row: dict) -> float:
    """The row's wall with its device time taken to zero: what no accelerator can go below while the
    imports, kernel loads, host work and I/O stay as measured (Amdahl).  A bound, not a projection of
    any device: a real one adds its own compute, launches and transfers."""
    return row["wall"] - row["device"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", metavar="FILE.json", help="print a saved run as a Markdown table and stop")
    parser.add_argument("--out")
    parser.add_argument("--big", action="store_true", help="also the 256x256 scan")
    parser.add_argument("--fc-toys", type=int, default=200)
    parser.add_argument("--only", metavar="CASE", help="measure one case alone (e.g. 'scan 256x256' with --big)")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(Path(args.table).read_text())
        devices = {json.dumps(r.get("jax_device")) for r in saved["rows"] if r.get("jax_device")}
        print(f"{saved['when']}, {saved['machine']}" + (f"; JAX device {', '.join(sorted(devices))}" if devices else ""))
        print(markdown(saved))
        return
    if not args.out:
        parser.error("--out is required (or --table FILE.json)")
    env = dict(os.environ)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []

    def save() -> None:
        """The record so far: a run cut short (a GPU session's time limit) keeps the rows it measured."""
        record = {"when": stamp, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "python": platform.python_version(), "parts": list(PARTS), "rows": rows,
                  "note": "split read from each command's own results file (timings); host = wall minus the others"}
        Path(args.out).write_text(json.dumps(record, indent=1))

    print(f"{'':<24}{'':<6}" + "".join(f"{k:>12}" for k in ("wall", *PARTS)) + "   device/(wall-imports)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [
            ("fit", ["fit", "--beta", "3.1", "--w", "0.015", "--out", "fit.json"], "fit.json", None),
            ("scan 16x10", ["scan", "--no-progress", "--out", "s16"], "s16/scan.json", None),
            ("scan 64x64", ["scan", "--beta", "2.95", "3.25", "64", "--w", "0.005", "0.05", "64", "--no-progress",
                            "--out", "s64"], "s64/scan.json", None),
            ("toys 1000", ["toys", "--beta", "3.1", "--w", "0.015", "--n", "1000", "--out", "toys"],
             "toys/toys.json", None),
        ]
        if args.big:
            cases.append(("scan 256x256", ["scan", "--beta", "2.95", "3.25", "256", "--w", "0.005", "0.05", "256",
                                           "--no-progress", "--out", "s256"], "s256/scan.json", None))
        for name, argv, result, key in cases:
            if args.only and name != args.only:
                continue
            for cold in (True, False):
                if Path(result).parent != Path("."):
                    shutil.rmtree(work / Path(result).parent, ignore_errors=True)
                rows.append(measure(name, QFDJAX + argv, result, env, work, cold, key))
                save()
        # Feldman-Cousins on the (warm) 16x10 scan: its own record's split (fits of the toys, no plots).
        fc_name = f"FC 16x10 x {args.fc_toys}"
        if args.only == fc_name:  # its scan first, not measured
            scan_16x10 = next(argv for name, argv, *_ in cases if name == "scan 16x10")
            run(QFDJAX + scan_16x10, dict(env, QFDJAX_CACHE_DIR=str(work / "cache-scan 16x10")), work)
        for cold in (True, False) if args.only in (None, fc_name) else ():
            shutil.rmtree(work / "s16" / "fc", ignore_errors=True)
            rows.append(measure(fc_name, QFDJAX + ["report", "s16", "--fc", str(args.fc_toys)],
                                "s16/scan.json", env, work, cold, key="fc"))
            save()
    save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
