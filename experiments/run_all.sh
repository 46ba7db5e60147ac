#!/usr/bin/env bash
# Re-runs every experiment into experiments/results/<name>/ (chunks are not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
QFDJAX=${QFDJAX:-.venv/bin/qfdjax}
for config in experiments/configs/*.toml; do
  name=$(basename "$config" .toml)
  rm -rf "experiments/results/$name"
  "$QFDJAX" scan --config "$config" --out "experiments/results/$name" --no-progress | tee "experiments/results/$name.txt"
done
"$QFDJAX" sensitivity --out experiments/sensitivity | tee experiments/sensitivity/summary.txt
