#!/usr/bin/env bash
# "What it would take": relax at three seed-grid points, then beta scans 2.5-4.5 with masses only
# (relaxed bounds), with masses + g for e, mu, tau (seed and relaxed bounds), and with shared parameters.
set -euo pipefail
cd "$(dirname "$0")/.."
QFDJAX=${QFDJAX:-.venv/bin/qfdjax}
out=experiments/what_it_takes
mkdir -p "$out"
for point in "3.0 0.01" "3.1 0.015" "3.2 0.03"; do
  set -- $point
  "$QFDJAX" relax --beta "$1" --w "$2" --out "$out/relax_$1_$2.json" 2>/dev/null | tee "$out/relax_$1_$2.txt"
done
for config in experiments/configs/wit_*.toml; do
  name=$(basename "$config" .toml)
  rm -rf "experiments/results/$name"
  "$QFDJAX" scan --config "$config" --out "experiments/results/$name" --no-progress | tee "experiments/results/$name.txt"
done
