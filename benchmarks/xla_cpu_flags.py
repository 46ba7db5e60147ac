"""XLA:CPU settings side by side: the LM lane-step under XLA's defaults, each of qfdjax's flags alone, and
all of them (qfdjax's default, `qfdjax.runtime.XLA_CPU_FLAGS`).

XLA reads XLA_FLAGS once per process, so each setting runs `benchmarks/lane_step.py` in its own process
(QFDJAX_XLA_CPU_FLAGS=0 and the setting's XLA_FLAGS), the settings interleaved `--rounds` times because
this machine's speed drifts by 10-30 % within minutes; the table gives each setting's best and median.

    python benchmarks/xla_cpu_flags.py [--rounds 3] [--out benchmarks/results/xla-cpu-flags-cpu-2cores.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def settings() -> dict[str, str]:
    from qfdjax.runtime import XLA_CPU_FLAGS

    named = {"XLA defaults": ""}
    named.update({f"only {flag}": flag for flag in XLA_CPU_FLAGS})
    named["qfdjax (all three)"] = " ".join(XLA_CPU_FLAGS)
    return named


def lane_step_once(xla_flags: str, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "lane.json"
        env = dict(os.environ, QFDJAX_XLA_CPU_FLAGS="0", XLA_FLAGS=xla_flags)
        subprocess.run([sys.executable, str(HERE / "lane_step.py"), "--repeat", str(repeat), "--out", str(out)],
                       env=env, check=True, capture_output=True)
        return json.loads(out.read_text())["us_per_lane"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out")
    args = parser.parse_args()
    named = settings()
    samples: dict[str, list[dict]] = {name: [] for name in named}
    for _ in range(args.rounds):
        for name, flags in named.items():
            samples[name].append(lane_step_once(flags, args.repeat))
    rows = []
    for name, runs in samples.items():
        row = {"setting": name, "xla_flags": named[name]}
        for piece in ("lm_lane_step", "linearize", "damped_step", "energies_and_derivatives"):
            values = [run[piece] for run in runs]
            row[piece] = {"best": min(values), "median": statistics.median(values), "runs": values}
        rows.append(row)
    print(f"{'setting':62s} lm lane-step us (best / median)   damped step")
    for row in rows:
        lane, damped = row["lm_lane_step"], row["damped_step"]
        print(f"{row['setting']:62s} {lane['best']:.3f} / {lane['median']:.3f}"
              f"                  {damped['best']:.3f} / {damped['median']:.3f}")
    if args.out:
        record = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rounds": args.rounds, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
