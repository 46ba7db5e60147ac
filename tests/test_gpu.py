"""The same numbers on a GPU: run where one is visible (skipped elsewhere, CI included).

CPU figures to compare with are committed: the seed reference cases
(tests/data) and the 16x10 scan in experiments/results/full_16x10, fitted on
this project's CPU machine.
"""

from pathlib import Path

import jax
import numpy as np
import pytest

import qfdjax
from qfdjax import Exact, lepton_energies

from .conftest import column

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[1]
# qfdjax fit --beta 3.1 --w 0.015 on the CPU (exact numerics, 8 starts).
CPU_FIT_CHI2 = 16488857.823686726


def test_runs_on_the_gpu_in_float64():
    assert jax.default_backend() == "gpu"
    x = jax.numpy.ones(3)
    assert x.dtype == np.float64 and next(iter(x.devices())).platform == "gpu"


def test_gpu_energies_match_the_converged_reference(energy_cases):
    got = lepton_energies(*(column(energy_cases, k) for k in ("beta", "w", "lam", "R_c", "U", "A")),
                          numerics=Exact(r_min=column(energy_cases, "r_min"), r_max=column(energy_cases, "r_max")))
    for name in ("E_circ", "E_stab", "E_grad"):
        want = np.array([c["exact"][name] for c in energy_cases])
        err = np.abs(np.asarray(getattr(got, name)) - want) / np.maximum(np.abs(want), 1e-300)
        assert err.max() <= 1e-10, name


def test_gpu_fit_matches_the_cpu_fit():
    result = qfdjax.fit(3.1, 0.015)
    assert result.valid
    assert result["chi2"] == pytest.approx(CPU_FIT_CHI2, rel=1e-9)


def test_gpu_scan_matches_the_committed_cpu_scan(tmp_path):
    cpu = np.load(ROOT / "experiments" / "results" / "full_16x10" / "scan.npz")
    record = qfdjax.run_scan(qfdjax.ScanConfig(), tmp_path / "scan", progress=False)
    chi2 = np.asarray(record["chi2"], float).ravel()
    np.testing.assert_allclose(chi2, cpu["chi2"], rtol=1e-9)
    assert np.all(np.asarray(record["converged"]).ravel())
