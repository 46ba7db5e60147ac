#!/usr/bin/env bash
# Statistics past Wilks (issue 21): goodness of fit and coverage from toys, and sigma_beta forecasts.
set -euo pipefail
cd "$(dirname "$0")/.."
QFDJAX=${QFDJAX:-.venv/bin/qfdjax}
out=experiments/results
rm -rf "$out/toys_seed_bounds" "$out/toys_identifiable" "$out/forecast"
"$QFDJAX" toys --beta 3.1 --w 0.015 --n 1000 --coverage e.R_c,mu.U,tau.U,beta,w --out "$out/toys_seed_bounds" \
  | tee "$out/toys_seed_bounds.txt"
"$QFDJAX" toys --beta 3.1 --w 0.015 --n 1000 --bounds experiments/configs/identifiable_mu_tau_U.toml \
  --coverage mu.U,tau.U --out "$out/toys_identifiable" | tee "$out/toys_identifiable.txt"
mkdir -p "$out/forecast"
: > "$out/forecast.txt"
for case in "mass" "mass,g" "mass,g_tau" "mass,g_tau g_tau=1e-4" "mass,g_tau g_tau=1e-5" "mass,g_tau g_tau=1e-6"; do
  set -- $case
  observables=$1
  name=${observables//,/_}
  sigma=()
  if [ $# -gt 1 ]; then sigma=(--sigma "$2"); name="${name}_${2//=/}"; fi
  "$QFDJAX" forecast --beta 3.1 --w 0.015 --observables "$observables" "${sigma[@]}" \
    --out "$out/forecast/$name.json" | tee -a "$out/forecast.txt"
done
# Feldman-Cousins on finished scans (run_all.sh and what_it_takes.sh write them): resumable, DIR/fc/.
"$QFDJAX" report "$out/full_16x10" --fc 200 | tail -5 | tee "$out/fc_full_16x10.txt"
# FC vs Wilks for beta where its profile runs to the range's edge: e+mu+tau with g_tau, relaxed bounds, a coarse
# grid (the fits are multimodal here: few toys per point are certified, and the record says how many).
rm -rf "$out/wit_c_g_tau_relaxed_fc"
"$QFDJAX" scan --config experiments/configs/wit_c_g_tau_relaxed_fc.toml --out "$out/wit_c_g_tau_relaxed_fc" \
  --no-progress > "$out/wit_c_g_tau_relaxed_fc.txt"
"$QFDJAX" report "$out/wit_c_g_tau_relaxed_fc" --fc 100 | tail -5 | tee "$out/fc_wit_c_g_tau_relaxed.txt"
