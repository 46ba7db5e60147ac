"""Pseudo-experiments, whole process: `qfdjax toys --n N` against the SciPy TRF toy loop, in the same run.

qfdjax fits every toy as lanes of its compiled LM kernel (4 Latin-hypercube starts
plus the truth per toy); the peer (benchmarks/peer_scipy.py toys) is the loop a
physicist would write: the same starts, `scipy.optimize.least_squares` per start.
The peer runs a subset of toys and is extrapolated per toy (its cost is linear in
the toys), labelled as such.  Cold = empty compile cache.

    python benchmarks/toys_bench.py --n 1000 --peer-n 20 --out benchmarks/results/toys-cpu-2cores.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_process import PEER, QFDJAX, cold_and_warm, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--peer-n", type=int, default=20)
    parser.add_argument("--warm-runs", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    env = dict(os.environ)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as work:
        cmd = QFDJAX + ["toys", "--beta", "3.1", "--w", "0.015", "--n", str(args.n), "--out", f"{work}/toys",
                        "--quiet"]
        row, _ = cold_and_warm("toys", cmd, env, work, args.warm_runs)
        with open(f"{work}/toys/toys.json") as handle:
            toys = json.load(handle)
        peer_wall, peer_out = timed(PEER + ["toys", "--beta", "3.1", "--w", "0.015", "--n", str(args.peer_n),
                                            "--starts", "4"], env, work)
        peer = json.loads(peer_out)
    # The peer's own fit of the data plus n_peer toys: per toy from its inner timer, the rest is start-up.
    per_toy = peer["seconds"] / (args.peer_n + 1)
    peer_full = peer_wall + per_toy * (args.n - args.peer_n)
    result = {
        "what": f"{args.n} toys at (beta, w) = (3.1, 0.015), seed bounds, masses; whole processes",
        "time_stamp": stamp, "device": f"CPU, {os.cpu_count()} cores ({platform.machine()})",
        "qfdjax": row | {"toys_s_inside": toys["timings"]["toys_s"], "n_valid": toys["n_valid"],
                         "chi2_toys_median": toys["chi2_toys_median"]},
        "peer": {"toys_run": args.peer_n, "wall_s": peer_wall, "per_toy_s": per_toy,
                 "extrapolated_wall_s": peer_full, "chi2_toys_median": peer["chi2_toys_median"],
                 "note": f"measured on {args.peer_n} toys, extrapolated linearly to {args.n}"},
        "ratio_warm": peer_full / row["warm_s"], "ratio_cold": peer_full / row["cold_s"],
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"qfdjax toys --n {args.n}: cold {row['cold_s']:.1f} s, warm {row['warm_s']:.1f} s; SciPy loop "
          f"{per_toy:.3f} s per toy -> {peer_full:.0f} s extrapolated; warm ratio {result['ratio_warm']:.0f}x")


if __name__ == "__main__":
    main()
