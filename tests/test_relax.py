"""`relax`: widened bounds that an independent fitter confirms reach the target."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import peer_scipy as peer  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from qfdjax.cli import main  # noqa: E402
from qfdjax.relax import relax  # noqa: E402


@pytest.fixture(scope="module")
def relaxed():
    return relax(3.1, 0.015, target=1.0)


def test_relaxed_bounds_reach_the_target_for_an_independent_fitter(relaxed):
    assert relaxed["reached"] and relaxed["chi2"] <= 1.0
    names = relaxed["param_names"]
    lower = np.array([relaxed["bounds"][n][0] for n in names])
    upper = np.array([relaxed["bounds"][n][1] for n in names])
    lam = 0.03 * 3.1 * 0.88**2 / 11
    x0 = np.clip(np.array(relaxed["params"]), lower, upper)
    r = least_squares(peer.residuals, x0, bounds=(lower, upper), method="trf", args=(3.1, 0.015, lam),
                      x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000)
    assert 2 * r.cost <= 1.0 + 1e-6


def test_only_widened_and_physical(relaxed):
    start, end = relaxed["start_bounds"], relaxed["bounds"]
    assert relaxed["moved"], "the seed bounds cannot fit: something must move"
    for name, (lo, hi) in end.items():
        assert lo <= start[name][0] and hi >= start[name][1], name
        kind = name.split(".")[1]
        assert lo > 0 and (kind != "A" or hi <= 1.0)
        if kind == "R_c":
            assert hi + 0.015 < 10.0
    assert relaxed["size_in_ranges"] == pytest.approx(sum(m["ranges"] for m in relaxed["moved"]))
    # One muon bound moved by a fraction of its range is enough (the design's independent check).
    assert relaxed["size_in_ranges"] < 1.0


def test_relax_cli_writes_the_record(tmp_path, capsys):
    out = tmp_path / "R.json"
    assert main(["relax", "--beta", "3.1", "--w", "0.015", "--max-moves", "1", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert set(saved["bounds"]) == set(saved["param_names"]) and len(saved["bounds"]) == 9
    assert {"name", "side", "old", "new"} <= set(saved["moved"][0])
    assert "versions" in saved and "moved mu.U lower bound" in capsys.readouterr().out
