#!/usr/bin/env bash
# Posteriors and nested comparisons on the fits' own likelihood (issue 31): sample, compare, and SBC.
set -euo pipefail
cd "$(dirname "$0")/.."
QFDJAX=${QFDJAX:-.venv/bin/qfdjax}
PYTHON=${PYTHON:-.venv/bin/python}
out=experiments/results
rm -rf "$out/posterior_identifiable" "$out/posterior_seed" "$out/posterior_g_tau_relaxed"
# A near-Gaussian posterior: two parameters, each pinned by one mass (HESSE's answer is the check).
"$QFDJAX" sample --beta 3.1 --w 0.015 --bounds experiments/configs/identifiable_mu_tau_U.toml \
  --out "$out/posterior_identifiable" | tee "$out/posterior_identifiable.txt"
# Beside its refitted profile likelihood, parameter by parameter (fit --param-profile).
for p in mu.U tau.U; do
  "$QFDJAX" fit --beta 3.1 --w 0.015 --bounds experiments/configs/identifiable_mu_tau_U.toml --param-profile "$p" \
    --profile-points 41 --profile-span 4 --out "$out/posterior_identifiable/profile-fit-$p.json" > /dev/null
done
"$PYTHON" experiments/posterior_vs_profile.py "$out/posterior_identifiable" \
  "$out/posterior_identifiable/profile-fit-mu.U-profile-mu.U.json" \
  "$out/posterior_identifiable/profile-fit-tau.U-profile-tau.U.json" | tee -a "$out/posterior_identifiable.txt"
# The seed's point with the seed's bounds: nine parameters, six pressed on bounds, the electron's degenerate.
"$QFDJAX" sample --beta 3.1 --w 0.015 --out "$out/posterior_seed" | tee "$out/posterior_seed.txt"
# beta and w sampled with the lepton parameters: masses + g (tau's SM g), relaxed bounds, beside the scan's profile.
"$QFDJAX" sample --beta 3.1 --w 0.02 --free beta,w --bounds experiments/configs/wit_c_g_tau_relaxed.toml \
  --observables mass,g_tau --out "$out/posterior_g_tau_relaxed" | tee "$out/posterior_g_tau_relaxed.txt"
"$PYTHON" experiments/posterior_vs_profile.py "$out/posterior_g_tau_relaxed" "$out/wit_c_g_tau_relaxed" \
  | tee -a "$out/posterior_g_tau_relaxed.txt"
# Does a free A per lepton buy a real improvement over one shared A?
"$QFDJAX" compare --null experiments/configs/wit_d_shared_A.toml --alt experiments/configs/wit_d_free_A.toml \
  --beta 3.1 --w 0.015 --toys 1000 --out "$out/compare_shared_A.json" | tee "$out/compare_shared_A.txt"
# Simulation-based calibration of the sampler on the identifiable configuration.
"$PYTHON" experiments/sbc.py --simulations 400 --out "$out/sbc_identifiable" | tee "$out/sbc_identifiable.txt"
