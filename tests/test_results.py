"""Result objects: FitResult and ScanResult, as attributes and as the JSON they are."""

import json

import numpy as np
import pytest

import qfdjax
import qfdjax.errors
from qfdjax import FitConfig, FitResult, ScanConfig, ScanResult, run_scan


def test_fit_result_attributes_and_json():
    r = qfdjax.fit(3.1, 0.015)
    assert isinstance(r, FitResult) and r.valid and r.chi2 == pytest.approx(16488857.82, rel=1e-9)
    assert r.values["tau.U"] == pytest.approx(0.15) and r.at_bounds["tau.U"] == "upper"
    # The electron block is flat: no errors, and the covariance is undefined (null), not zeros.
    assert r.errors == {} and r.covariance is None and r["covariance"] is None and r["hessian_singular"]
    assert json.loads(json.dumps(r.to_dict()))["chi2"] == r["chi2"]
    assert "FitResult(chi2=16488857.82" in repr(r)


def test_scan_result_shapes_and_load(tmp_path):
    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.02, 2), fit=FitConfig(starts=3))
    s = run_scan(config, tmp_path, progress=False)
    assert isinstance(s, ScanResult)
    assert s.chi2.shape == (3, 2) and s.params.shape == (3, 2, 9) and s.converged.shape == (3, 2)
    loaded = ScanResult.load(tmp_path)
    np.testing.assert_array_equal(loaded.chi2, s.chi2)
    assert loaded.verdict["path"] == "C"
    with pytest.raises(qfdjax.errors.InputError, match="not a directory"):
        ScanResult.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(qfdjax.errors.InputError, match="no scan.json"):
        ScanResult.load(tmp_path / "empty")
    try:
        frame = s.to_pandas()
    except ImportError:
        return
    assert len(frame) == 6 and frame["chi2"].min() == pytest.approx(s.chi2.min())
