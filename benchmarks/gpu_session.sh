#!/usr/bin/env bash
# The GPU checks of one lent device session, as one prepared command that fits a
# 10-minute call: the GPU tests (tests/test_gpu.py: energies, a fit and the 16x10
# scan against the committed CPU numbers), the quick bench, scan scaling up to
# 1024x1024, whole-process timings, 1000 toys and Feldman-Cousins at 10 and 50 toys
# per point.  Every result lands in $OUT (the device tool brings back at most 8
# files), named by device.
#
#   device run:  bash benchmarks/gpu_session.sh        (timeout_s 600)
#   second call: bash benchmarks/gpu_session.sh amdahl (timeout_s 600): issue 28's Amdahl table
#                (benchmarks/amdahl.py: each command cold and warm, its wall split, the device named)
#   here, after: copy the files into benchmarks/results/ and commit them.
#
# The device image already holds JAX with CUDA, equinox, optax, optimistix,
# matplotlib, tqdm, SciPy and pytest: qfdjax runs from the checkout, uninstalled.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu-session}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export QFDJAX_CACHE_DIR=/tmp/qfdjax-cache
PY=${PYTHON:-python3}
LOG="$OUT/gpu-session.log"
step() {  # step SECONDS NAME COMMAND...: run with a time limit, log, never stop the session
  local limit=$1 name=$2; shift 2
  echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  echo "=== $name: exit ${PIPESTATUS[0]}" | tee -a "$LOG"
}
step 30 devices bash -c "nvidia-smi -L; $PY -c 'import jax; print(jax.__version__, jax.devices())'"
if [ "${1:-}" = amdahl ]; then
  # The 256x256 rows are the accelerator's case; FC at 200 toys per point last (cut first if time runs out).
  step 540 amdahl "$PY" benchmarks/amdahl.py --big --out "$OUT/amdahl-gpu.json"
  ls -la "$OUT" | tee -a "$LOG"
  exit 0
fi
# One process (-o addopts=): xdist workers would each preallocate most of the GPU, and may be missing here.
step 130 gpu-tests "$PY" -m pytest -o addopts="" -p no:cacheprovider -q -m gpu tests/test_gpu.py
step 90 quick-bench "$PY" -m qfdjax bench --quick --device gpu --out "$OUT/quick-gpu.json"
step 190 scan-scaling "$PY" benchmarks/run_benchmarks.py --device gpu --max-grid 1024 --out-dir "$OUT"
step 90 whole-process "$PY" benchmarks/whole_process.py --skip-peer-scan --out "$OUT/whole-process-gpu.json"
# 1000 toys as lanes (the peer loop is CPU-bound: 5 toys only, extrapolated).
step 60 toys "$PY" benchmarks/toys_bench.py --n 1000 --peer-n 5 --warm-runs 1 --out "$OUT/toys-gpu.json"
# Last, and cut first if the call runs out: Feldman-Cousins on the 16x10 scan at 10 and 50 toys per point,
# every kernel timed, for a measured (not projected) GPU figure beside the CPU one (issue 21).
step 60 fc "$PY" benchmarks/fc_projection.py --toys 10,50 --out "$OUT/fc-projection-gpu.json"
ls -la "$OUT" | tee -a "$LOG"
