#!/usr/bin/env bash
# Re-runs every experiment into experiments/results/<name>/ (chunks are not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
QFDJAX=${QFDJAX:-.venv/bin/qfdjax}
for config in experiments/configs/*.toml; do
  # Bounds files for `qfdjax fit --bounds` live here too: they set no grid and are run below.
  grep -q '^beta *=' "$config" || continue
  name=$(basename "$config" .toml)
  rm -rf "experiments/results/$name"
  "$QFDJAX" scan --config "$config" --out "experiments/results/$name" --no-progress | tee "experiments/results/$name.txt"
done
name=identifiable_mu_tau_U
rm -rf "experiments/results/$name"
"$QFDJAX" fit --beta 3.1 --w 0.015 --bounds "experiments/configs/$name.toml" --param-profile mu.U,tau.U \
  --minos mu.U,tau.U --out "experiments/results/$name/fit.json" | tee "experiments/results/$name.txt"
"$QFDJAX" sensitivity --out experiments/sensitivity | tee experiments/sensitivity/summary.txt
