"""The optimiser comparison (benchmarks/optimizer_comparison.py) runs, and no library baseline
finds a lower chi^2 than qfdjax's bounded LM from the same starts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_baselines_never_beat_the_bounded_lm():
    pytest.importorskip("optax")
    pytest.importorskip("optimistix")
    from optimizer_comparison import compare

    result = compare(n_beta=2, n_w=1, starts=2, adam_steps=60, adam_rates=(1e-2,), optx_steps=40, de_maxiter=30)
    rows = {r["method"].split(" (")[0].split(",")[0]: r for r in result["rows"]}
    assert set(rows) == {"qfdjax LM", "optax Adam", "optimistix LM", "qfdjax DE"}
    lm = np.array(rows["qfdjax LM"]["chi2"])
    assert lm.shape == (2,) and np.all(np.isfinite(lm))
    for name, row in rows.items():
        chi2 = np.array(row["chi2"])
        assert np.all(np.isfinite(chi2)), name
        # A baseline below LM would mean the certified LM minimum is not one.
        assert np.all(chi2 >= lm * (1 - 1e-9)), (name, chi2, lm)
    # 60 Adam steps do not reach the LM minimum on this stiff problem: the table has something to say.
    assert rows["optax Adam"]["median_rel_excess"] > 1e-6
